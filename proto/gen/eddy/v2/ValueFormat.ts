// Original file: proto/eddy/v2/feature_service.proto

export const ValueFormat = {
  VALUE_FORMAT_UNSPECIFIED: 'VALUE_FORMAT_UNSPECIFIED',
  VALUE_FORMAT_STRUCT: 'VALUE_FORMAT_STRUCT',
  VALUE_FORMAT_JSON: 'VALUE_FORMAT_JSON',
} as const;

export type ValueFormat =
  | 'VALUE_FORMAT_UNSPECIFIED'
  | 0
  | 'VALUE_FORMAT_STRUCT'
  | 1
  | 'VALUE_FORMAT_JSON'
  | 2

export type ValueFormat__Output = typeof ValueFormat[keyof typeof ValueFormat]
