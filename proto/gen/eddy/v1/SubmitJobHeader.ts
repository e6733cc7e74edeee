// Original file: proto/eddy/v1/jobs.proto

import type { Long } from '@grpc/proto-loader';

export interface SubmitJobHeader {
  'manifestJson'?: (string);
  'bundleSha256'?: (string);
  'bundleSize'?: (number | string | Long);
  'fromSavepoint'?: (string);
  'allowNonRestoredState'?: (boolean);
}

export interface SubmitJobHeader__Output {
  'manifestJson': (string);
  'bundleSha256': (string);
  'bundleSize': (string);
  'fromSavepoint': (string);
  'allowNonRestoredState': (boolean);
}
