// Original file: proto/eddy/v1/jobs.proto

import type { SubmitJobHeader as _eddy_v1_SubmitJobHeader, SubmitJobHeader__Output as _eddy_v1_SubmitJobHeader__Output } from '../../eddy/v1/SubmitJobHeader';

export interface SubmitJobRequest {
  'header'?: (_eddy_v1_SubmitJobHeader | null);
  'chunk'?: (Buffer | Uint8Array | string);
  'part'?: "header"|"chunk";
}

export interface SubmitJobRequest__Output {
  'header'?: (_eddy_v1_SubmitJobHeader__Output | null);
  'chunk'?: (Buffer);
  'part'?: "header"|"chunk";
}
