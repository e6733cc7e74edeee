// Original file: proto/eddy/control/v1/control.proto

import type { QueryValue as _eddy_control_v1_QueryValue, QueryValue__Output as _eddy_control_v1_QueryValue__Output } from '../../../eddy/control/v1/QueryValue';
import type { Long } from '@grpc/proto-loader';

export interface QueryReply {
  'values'?: (_eddy_control_v1_QueryValue)[];
  'error'?: (string);
  'checkpointId'?: (number | string | Long);
  'workerId'?: (string);
  'epoch'?: (number | string | Long);
  'unavailableKeyGroups'?: (number)[];
  'unavailableReason'?: (string);
}

export interface QueryReply__Output {
  'values': (_eddy_control_v1_QueryValue__Output)[];
  'error': (string);
  'checkpointId': (number);
  'workerId': (string);
  'epoch': (number);
  'unavailableKeyGroups': (number)[];
  'unavailableReason': (string);
}
