import type { BackendFactory } from '../../core/backend.js';
import type { Core } from '../../core/core.js';
import { configPath } from './config.js';
import { loginPath } from './login.js';
import { rolePaths } from './role.js';

/** The Kubernetes auth method, Vault-compatible: config, role/:name and login validated by TokenReview. */
export function kubernetesBackend(getCore: () => Core): BackendFactory {
  return (ctx) => ({
    type: 'kubernetes',
    paths: [configPath(), ...rolePaths(), loginPath(getCore, ctx.mountPoint)],
  });
}
