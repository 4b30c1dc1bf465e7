// The fixed interface between the webhook (`cofre injector`, src/kube/injector/) and this agent: the paths the
// webhook mounts, the env vars it sets and the command prefix it puts in front of an env-mode container's command.
// The webhook (src/kube/injector/contract.ts) re-exports these, so the two sides cannot drift apart.

/** Where `cofre agent -init` installs the exec runtime when the config says `install_to`. */
export const DEFAULT_INSTALL_DIR = '/cofre/bin';

/**
 * The command an env-mode container runs in front of its own command and args. The dynamic loader and the shared
 * libraries of the agent's own Node.js are installed next to it, so an image without a shell or libc runs it.
 */
export const EXEC_PREFIX: readonly string[] = [
  '/cofre/bin/ld.so',
  '--library-path',
  '/cofre/bin/lib',
  '/cofre/bin/node',
  '/cofre/bin/app/cofre.js',
  'agent',
  'exec',
  '--',
];

export const DEFAULT_FILES_DIR = '/cofre/secrets';
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/cofre/token';
export const DEFAULT_AUTH_MOUNT = 'kubernetes';

/** The env vars every agent invocation gets (values never: only where to find them). */
export const ENV_CONFIG = 'COFRE_AGENT_CONFIG';
export const ENV_ADDRESS = 'COFRE_ADDR';
export const ENV_CACERT = 'COFRE_CACERT';
