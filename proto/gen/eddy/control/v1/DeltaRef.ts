// Original file: proto/eddy/control/v1/control.proto

import type { SectionRef as _eddy_control_v1_SectionRef, SectionRef__Output as _eddy_control_v1_SectionRef__Output } from '../../../eddy/control/v1/SectionRef';

export interface DeltaRef {
  'stageId'?: (string);
  'key'?: (string);
  'sections'?: (_eddy_control_v1_SectionRef)[];
}

export interface DeltaRef__Output {
  'stageId': (string);
  'key': (string);
  'sections': (_eddy_control_v1_SectionRef__Output)[];
}
