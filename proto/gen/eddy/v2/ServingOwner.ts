// Original file: proto/eddy/v2/feature_service.proto

import type { KeyGroupRange as _eddy_v2_KeyGroupRange, KeyGroupRange__Output as _eddy_v2_KeyGroupRange__Output } from '../../eddy/v2/KeyGroupRange';

export interface ServingOwner {
  'workerId'?: (string);
  'address'?: (string);
  'keyGroups'?: (_eddy_v2_KeyGroupRange)[];
}

export interface ServingOwner__Output {
  'workerId': (string);
  'address': (string);
  'keyGroups': (_eddy_v2_KeyGroupRange__Output)[];
}
