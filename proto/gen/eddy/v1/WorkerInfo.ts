// Original file: proto/eddy/v1/cluster.proto

import type { WorkerAssignment as _eddy_v1_WorkerAssignment, WorkerAssignment__Output as _eddy_v1_WorkerAssignment__Output } from '../../eddy/v1/WorkerAssignment';
import type { WorkerState as _eddy_v1_WorkerState, WorkerState__Output as _eddy_v1_WorkerState__Output } from '../../eddy/v1/WorkerState';
import type { Long } from '@grpc/proto-loader';

export interface WorkerInfo {
  'workerId'?: (string);
  'state'?: (string);
  'lastHeartbeatUnixMs'?: (number | string | Long);
  'registeredAtUnixMs'?: (number | string | Long);
  'assignments'?: (_eddy_v1_WorkerAssignment)[];
  'pid'?: (number);
  'host'?: (string);
  'stateBytes'?: (number | string | Long);
  'workerState'?: (_eddy_v1_WorkerState);
}

export interface WorkerInfo__Output {
  'workerId': (string);
  'state': (string);
  'lastHeartbeatUnixMs': (string);
  'registeredAtUnixMs': (string);
  'assignments': (_eddy_v1_WorkerAssignment__Output)[];
  'pid': (number);
  'host': (string);
  'stateBytes': (string);
  'workerState': (_eddy_v1_WorkerState__Output);
}
