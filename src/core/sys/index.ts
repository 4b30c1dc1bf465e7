import type { Backend } from '../backend.js';
import type { Core } from '../core.js';
import { auditPaths } from './audit.js';
import { capabilityPaths } from './capabilities.js';
import { eventPaths } from './events.js';
import { leasePaths } from './leases.js';
import { passwordPolicyPaths } from './password-policies.js';
import { mountPaths } from './mounts.js';
import { policyPaths } from './policies.js';
import { sealPaths } from './seal.js';
import { snapshotPaths } from './snapshot.js';
import { wrappingPaths } from './wrapping.js';

/** The system backend at sys/: built in, served while sealed for its unauthenticated paths. */
export function systemBackend(core: Core, storageType: string): Backend {
  return {
    type: 'system',
    paths: [
      ...sealPaths(core, storageType),
      ...mountPaths(core),
      ...policyPaths(core),
      ...capabilityPaths(core),
      ...auditPaths(core),
      ...eventPaths(core),
      ...leasePaths(core),
      ...passwordPolicyPaths(core.passwordPolicies),
      ...snapshotPaths(core),
      ...wrappingPaths(core),
    ],
  };
}
