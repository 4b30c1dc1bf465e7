import type { Backend } from '../backend.js';
import type { Core } from '../core.js';
import { auditPaths } from './audit.js';
import { capabilityPaths } from './capabilities.js';
import { eventPaths } from './events.js';
import { generateRootPaths } from './generate-root.js';
import { hostInfoPaths } from './host-info.js';
import { keyCeremonyForwardPaths } from './key-ceremony.js';
import { leasePaths } from './leases.js';
import { passwordPolicyPaths } from './password-policies.js';
import { mountPaths } from './mounts.js';
import { policyPaths } from './policies.js';
import { rekeyPaths } from './rekey.js';
import { sealPaths } from './seal.js';
import { snapshotPaths } from './snapshot.js';
import { stepDownPaths } from './step-down.js';
import { remountPaths } from './remount.js';
import { toolPaths } from './tools.js';
import { wrappingPaths } from './wrapping.js';
import { clusterAdminPaths } from '../../clusters/admin-paths.js';
import { clusterAgentPaths } from '../../clusters/agent-paths.js';

/** The system backend at sys/: built in, served while sealed for its unauthenticated paths. */
export function systemBackend(core: Core, storageType: string): Backend {
  return {
    type: 'system',
    help: 'The system backend: seal, mounts, auth methods, policies, audit devices, leases and server status.',
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
      ...generateRootPaths(core),
      ...rekeyPaths(core),
      ...keyCeremonyForwardPaths(core),
      ...stepDownPaths(core),
      ...remountPaths(core),
      ...toolPaths(),
      ...hostInfoPaths(),
      ...wrappingPaths(core),
      ...clusterAdminPaths(core),
      ...clusterAgentPaths(core),
    ],
  };
}
