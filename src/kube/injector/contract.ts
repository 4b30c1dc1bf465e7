/**
 * The webhook's half of the contract with the in-pod agent (docs/in-pod-delivery.md): the names, paths and the
 * configuration shape the agent reads. The agent never reads annotations or the Kubernetes API, so everything it
 * needs must be spelled out here, in the pod spec, and no secret value ever is.
 */

/** The label that opts a pod in; the MutatingWebhookConfiguration's objectSelector matches it. */
export const INJECT_LABEL = 'cofre.dev/inject';
/** Every annotation the webhook reads starts with this. */
export const ANNOTATION_PREFIX = 'cofre.dev/';
/** Written on a mutated pod, so a reinvocation (or a reader) can tell. */
export const STATUS_ANNOTATION = 'cofre.dev/status';

export const SECRETS_VOLUME = 'cofre-secrets';
export const BIN_VOLUME = 'cofre-bin';
export const TOKEN_VOLUME = 'cofre-token';

export const INIT_CONTAINER = 'cofre-agent-init';
export const SIDECAR_CONTAINER = 'cofre-agent';

/** Where the agent containers mount the files volume (rw); app containers mount it read-only at their own path. */
export const AGENT_FILES_DIR = '/cofre/secrets';
export const DEFAULT_FILES_DIR = '/cofre/secrets';
export const BIN_DIR = '/cofre/bin';
export const TOKEN_DIR = '/var/run/secrets/cofre';
export const TOKEN_FILE = 'token';
export const TOKEN_EXPIRATION_SECONDS = 3600;
export const DEFAULT_AUDIENCE = 'cofre';
export const DEFAULT_AUTH_MOUNT = 'kubernetes';

export const INIT_COMMAND = ['cofre', 'agent', '-init'] as const;
export const SIDECAR_COMMAND = ['cofre', 'agent'] as const;

/**
 * What an env-mode container's command (and exec probes) become, followed by the original command: the runtime
 * `cofre agent -init` installs into /cofre/bin, runnable in any x86-64 Linux image (no shell or libc needed).
 * The agent's branch exports the same array as EXEC_PREFIX from src/kube/pod-agent/contract.ts.
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

export const ENV_ADDR = 'COFRE_ADDR';
export const ENV_CONFIG = 'COFRE_AGENT_CONFIG';
export const ENV_CACERT = 'COFRE_CACERT';

export type FileFormat = 'env' | 'json' | 'raw' | 'template';

export interface AgentFile {
  path: string;
  mode: string;
  format: FileFormat;
  template?: string;
}

/** One item of COFRE_AGENT_CONFIG: exactly one of kv/path, exactly one of file/env. */
export interface AgentItem {
  name: string;
  kv?: string;
  path?: string;
  keys?: string[];
  file?: AgentFile;
  env?: Record<string, string>;
}

/** COFRE_AGENT_CONFIG, as the agent validates it (unknown fields refused, so nothing else goes in). */
export interface AgentConfig {
  auth: { mount: string; role: string; token_path: string };
  files_dir: string;
  install_to?: string;
  revoke_on_exit?: boolean;
  on_change?: { signal: string; pid_file?: string };
  items: AgentItem[];
}
