// Original file: proto/eddy/v1/control.proto

import type { QueryValue as _eddy_v1_control_QueryValue, QueryValue__Output as _eddy_v1_control_QueryValue__Output } from '../../../eddy/v1/control/QueryValue';
import type { Long } from '@grpc/proto-loader';

export interface WatchEvent {
  'watchId'?: (string);
  'epoch'?: (number | string | Long);
  'checkpointId'?: (number | string | Long);
  'initial'?: (boolean);
  'values'?: (_eddy_v1_control_QueryValue)[];
  'keyGroup'?: (number);
}

export interface WatchEvent__Output {
  'watchId': (string);
  'epoch': (number);
  'checkpointId': (number);
  'initial': (boolean);
  'values': (_eddy_v1_control_QueryValue__Output)[];
  'keyGroup': (number);
}
