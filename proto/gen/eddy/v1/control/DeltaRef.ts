// Original file: proto/eddy/v1/control.proto

import type { SectionRef as _eddy_v1_control_SectionRef, SectionRef__Output as _eddy_v1_control_SectionRef__Output } from '../../../eddy/v1/control/SectionRef';

export interface DeltaRef {
  'stageId'?: (string);
  'key'?: (string);
  'sections'?: (_eddy_v1_control_SectionRef)[];
}

export interface DeltaRef__Output {
  'stageId': (string);
  'key': (string);
  'sections': (_eddy_v1_control_SectionRef__Output)[];
}
