// Original file: proto/eddy/v1/cluster.proto

export const WorkerState = {
  WORKER_STATE_UNSPECIFIED: 'WORKER_STATE_UNSPECIFIED',
  WORKER_STATE_ALIVE: 'WORKER_STATE_ALIVE',
  WORKER_STATE_LEAVING: 'WORKER_STATE_LEAVING',
  WORKER_STATE_DEAD: 'WORKER_STATE_DEAD',
} as const;

export type WorkerState =
  | 'WORKER_STATE_UNSPECIFIED'
  | 0
  | 'WORKER_STATE_ALIVE'
  | 1
  | 'WORKER_STATE_LEAVING'
  | 2
  | 'WORKER_STATE_DEAD'
  | 3

export type WorkerState__Output = typeof WorkerState[keyof typeof WorkerState]
