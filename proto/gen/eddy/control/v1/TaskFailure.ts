// Original file: proto/eddy/control/v1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface TaskFailure {
  'jobId'?: (string);
  'workerId'?: (string);
  'stageId'?: (string);
  'keyGroup'?: (number);
  'message'?: (string);
  'stack'?: (string);
  'atUnixMs'?: (number | string | Long);
  'userCode'?: (boolean);
  'epoch'?: (number | string | Long);
  'hasSourcePosition'?: (boolean);
  'split'?: (number);
  'sequence'?: (number | string | Long);
}

export interface TaskFailure__Output {
  'jobId': (string);
  'workerId': (string);
  'stageId': (string);
  'keyGroup': (number);
  'message': (string);
  'stack': (string);
  'atUnixMs': (number);
  'userCode': (boolean);
  'epoch': (number);
  'hasSourcePosition': (boolean);
  'split': (number);
  'sequence': (number);
}
