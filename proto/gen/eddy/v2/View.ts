// Original file: proto/eddy/v2/feature_service.proto

export const View = {
  VIEW_UNSPECIFIED: 'VIEW_UNSPECIFIED',
  VIEW_LATEST: 'VIEW_LATEST',
  VIEW_COMMITTED: 'VIEW_COMMITTED',
} as const;

export type View =
  | 'VIEW_UNSPECIFIED'
  | 0
  | 'VIEW_LATEST'
  | 1
  | 'VIEW_COMMITTED'
  | 2

export type View__Output = typeof View[keyof typeof View]
