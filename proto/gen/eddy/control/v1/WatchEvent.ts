// Original file: proto/eddy/control/v1/control.proto

import type { QueryValue as _eddy_control_v1_QueryValue, QueryValue__Output as _eddy_control_v1_QueryValue__Output } from '../../../eddy/control/v1/QueryValue';
import type { Long } from '@grpc/proto-loader';

export interface WatchEvent {
  'watchId'?: (string);
  'epoch'?: (number | string | Long);
  'checkpointId'?: (number | string | Long);
  'initial'?: (boolean);
  'values'?: (_eddy_control_v1_QueryValue)[];
  'keyGroup'?: (number);
}

export interface WatchEvent__Output {
  'watchId': (string);
  'epoch': (number);
  'checkpointId': (number);
  'initial': (boolean);
  'values': (_eddy_control_v1_QueryValue__Output)[];
  'keyGroup': (number);
}
