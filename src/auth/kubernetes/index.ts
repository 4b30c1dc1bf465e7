import type { BackendFactory } from '../../core/backend.js';
import { renewWhileRoleHolds } from '../token-fields.js';
import { configPath } from './config.js';
import { loginPath } from './login.js';
import { kubeRolePaths, readRole } from './role.js';

/** The Kubernetes auth method, Vault-compatible: config, role/:name and login validated by TokenReview. */
export const kubernetesBackend: BackendFactory = () => ({
  type: 'kubernetes',
  help: 'Pods log in with their service account token, which the cluster’s TokenReview API validates.',
  paths: [configPath(), ...kubeRolePaths(), loginPath()],
  renewAuth: renewWhileRoleHolds((storage, name) => readRole(storage, name)),
});
