// Original file: proto/eddy/v1/control.proto

import type { QueryValue as _eddy_v1_control_QueryValue, QueryValue__Output as _eddy_v1_control_QueryValue__Output } from '../../../eddy/v1/control/QueryValue';
import type { Long } from '@grpc/proto-loader';

export interface QueryReply {
  'values'?: (_eddy_v1_control_QueryValue)[];
  'error'?: (string);
  'checkpointId'?: (number | string | Long);
  'workerId'?: (string);
  'epoch'?: (number | string | Long);
  'unavailableKeyGroups'?: (number)[];
  'unavailableReason'?: (string);
}

export interface QueryReply__Output {
  'values': (_eddy_v1_control_QueryValue__Output)[];
  'error': (string);
  'checkpointId': (number);
  'workerId': (string);
  'epoch': (number);
  'unavailableKeyGroups': (number)[];
  'unavailableReason': (string);
}
