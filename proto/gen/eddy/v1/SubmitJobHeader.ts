// Original file: proto/eddy/v1/jobs.proto

import type { SourceStartAt as _eddy_v1_SourceStartAt, SourceStartAt__Output as _eddy_v1_SourceStartAt__Output } from '../../eddy/v1/SourceStartAt';
import type { Long } from '@grpc/proto-loader';

export interface SubmitJobHeader {
  'manifestJson'?: (string);
  'bundleSha256'?: (string);
  'bundleSize'?: (number | string | Long);
  'fromSavepoint'?: (string);
  'allowNonRestoredState'?: (boolean);
  'startAt'?: (_eddy_v1_SourceStartAt)[];
}

export interface SubmitJobHeader__Output {
  'manifestJson': (string);
  'bundleSha256': (string);
  'bundleSize': (string);
  'fromSavepoint': (string);
  'allowNonRestoredState': (boolean);
  'startAt': (_eddy_v1_SourceStartAt__Output)[];
}
