/**
 * The webhook's half of the contract with the in-pod agent (docs/in-pod-delivery.md): the names, paths and the
 * configuration shape the agent reads. The agent never reads annotations or the Kubernetes API, so everything it
 * needs must be spelled out here, in the pod spec, and no secret value ever is.
 */

// The constants the agent reads are the agent's own (src/kube/pod-agent/contract.ts): one definition serves both.
export {
  DEFAULT_AUTH_MOUNT,
  DEFAULT_FILES_DIR,
  ENV_ADDRESS as ENV_ADDR,
  ENV_CACERT,
  ENV_CONFIG,
  EXEC_PREFIX,
} from '../pod-agent/contract.js';

/** The label that opts a pod in; the MutatingWebhookConfiguration's objectSelector matches it. */
export const INJECT_LABEL = 'cofre.dev/inject';
/** Every annotation the webhook reads starts with this. */
export const ANNOTATION_PREFIX = 'cofre.dev/';
/** Written on a mutated pod, so a reinvocation (or a reader) can tell. */
export const STATUS_ANNOTATION = 'cofre.dev/status';

export const SECRETS_VOLUME = 'cofre-secrets';
export const BIN_VOLUME = 'cofre-bin';
export const TOKEN_VOLUME = 'cofre-token';
/** The agents' own memory volume (init container and sidecar only): the token and leases the sidecar takes over. */
export const STATE_VOLUME = 'cofre-agent-state';
/**
 * Where `cofre agent exec` leaves the leases of credentials in env vars for the sidecar: each application container
 * mounts only its own directory of it (subPath: its name), the sidecar mounts it whole, read-only. So no container
 * can write the agents' state or another container's leases, and the sidecar reads what container X wrote only as
 * X's exec leases (which it validates: exec-leases.ts in the agent).
 */
export const EXEC_STATE_VOLUME = 'cofre-exec-state';

export const INIT_CONTAINER = 'cofre-agent-init';
export const SIDECAR_CONTAINER = 'cofre-agent';

/** Where the agent containers mount the files volume (rw); app containers mount it read-only at their own path. */
export const AGENT_FILES_DIR = '/cofre/secrets';
export const BIN_DIR = '/cofre/bin';
export const TOKEN_DIR = '/var/run/secrets/cofre';
export const STATE_DIR = '/cofre/state';
export const STATE_FILE = `${STATE_DIR}/agent.json`;
export const EXEC_STATE_DIR = '/cofre/exec-state';
/** Where `cofre agent exec` leaves its leases, as its own container sees it (its own directory of the volume). */
export const EXEC_STATE_FILE = `${EXEC_STATE_DIR}/leases.json`;
/** The same file of application container NAME, as the sidecar sees it. */
export const execStateFile = (container: string): string => `${EXEC_STATE_DIR}/${container}/leases.json`;
export const TOKEN_FILE = 'token';
export const TOKEN_EXPIRATION_SECONDS = 3600;
export const DEFAULT_AUDIENCE = 'cofre';

export const INIT_COMMAND = ['cofre', 'agent', '-init'] as const;
export const SIDECAR_COMMAND = ['cofre', 'agent'] as const;

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
  state_file?: string;
  exec_state_files?: string[];
  revoke_on_exit?: boolean;
  on_change?: { signal: string; pid_file?: string };
  items: AgentItem[];
}
