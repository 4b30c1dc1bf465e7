import type { BackendFactory } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { kubernetesBackend } from './kubernetes/index.js';
import { tokenBackend } from './token/index.js';

/** Auth methods by type. Adding one is its folder plus one line here. */
export function authMethods(getCore: () => Core): Record<string, BackendFactory> {
  return {
    token: tokenBackend(getCore),
    kubernetes: kubernetesBackend,
    jwt: async (ctx) => (await import('./jwt/index.js')).jwtBackend(ctx),
    oidc: async (ctx) => (await import('./jwt/index.js')).jwtBackend(ctx),
    approle: async (ctx) => (await import('./approle/index.js')).appRoleBackend(ctx),
    userpass: async (ctx) => (await import('./userpass/index.js')).userpassBackend(ctx),
  };
}
