// Original file: proto/eddy/v1/features.proto

export const View = {
  VIEW_LATEST: 'VIEW_LATEST',
  VIEW_COMMITTED: 'VIEW_COMMITTED',
} as const;

export type View =
  | 'VIEW_LATEST'
  | 0
  | 'VIEW_COMMITTED'
  | 1

export type View__Output = typeof View[keyof typeof View]
