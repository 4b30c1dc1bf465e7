/**
 * Turns an opted-in pod and its parsed annotations into the RFC 6902 JSON patch the API server applies: the
 * volumes, the agent's init container (and native sidecar), read-only mounts in the app containers and, for
 * environment variables, the app's command run through `cofre agent exec --`. The patch carries names, paths and
 * configuration only, never a secret value: the agent fetches the values inside the pod.
 */
import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1PodSpec,
  V1Probe,
  V1SecurityContext,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import type { InjectionRequest } from './annotations.js';
import {
  AGENT_FILES_DIR,
  BIN_DIR,
  BIN_VOLUME,
  ENV_ADDR,
  ENV_CACERT,
  ENV_CONFIG,
  EXEC_PREFIX,
  EXEC_STATE_DIR,
  EXEC_STATE_FILE,
  EXEC_STATE_VOLUME,
  INIT_COMMAND,
  INIT_CONTAINER,
  SECRETS_VOLUME,
  SIDECAR_COMMAND,
  SIDECAR_CONTAINER,
  STATE_DIR,
  STATE_FILE,
  STATE_VOLUME,
  execStateFile,
  STATUS_ANNOTATION,
  TOKEN_DIR,
  TOKEN_EXPIRATION_SECONDS,
  TOKEN_FILE,
  TOKEN_VOLUME,
  type AgentConfig,
  type AgentItem,
} from './contract.js';

/** The pod cannot be injected as it is; the message says why and what to change. */
export class PodRefusedError extends Error {}

export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** The injector's own settings, from its command line. */
export interface AgentSettings {
  image: string;
  imagePullPolicy: string;
  cofreAddress: string;
  /** Inline PEM of the CA that signed Cofre's certificate, when it is a private one. */
  caCert?: string;
}

/** JSON Pointer escaping (RFC 6901), for annotation keys such as cofre.dev/status. */
const pointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;

/** Adds values to the array at `path`, creating it when the pod has none. */
function append(ops: PatchOperation[], path: string, existing: unknown[] | undefined, values: unknown[]): void {
  if (values.length === 0) return;
  if (!existing) ops.push({ op: 'add', path, value: values });
  else for (const value of values) ops.push({ op: 'add', path: `${path}/-`, value });
}

function agentConfig(
  request: InjectionRequest,
  items: AgentItem[],
  opts: { installTo?: boolean; stateFile?: string; execStateFiles?: string[] } = {},
): string {
  const config: AgentConfig = {
    auth: { mount: request.authMount, role: request.role, token_path: `${TOKEN_DIR}/${TOKEN_FILE}` },
    files_dir: AGENT_FILES_DIR,
    ...(opts.installTo ? { install_to: BIN_DIR } : {}),
    ...(opts.stateFile ? { state_file: opts.stateFile } : {}),
    ...(opts.execStateFiles?.length ? { exec_state_files: opts.execStateFiles } : {}),
    revoke_on_exit: request.revokeOnExit,
    ...(request.onChange ? { on_change: request.onChange } : {}),
    items,
  };
  return JSON.stringify(config);
}

function agentEnv(settings: AgentSettings, config: string): V1EnvVar[] {
  return [
    { name: ENV_ADDR, value: settings.cofreAddress },
    { name: ENV_CONFIG, value: config },
    ...(settings.caCert ? [{ name: ENV_CACERT, value: settings.caCert }] : []),
  ];
}

/**
 * Who the agent containers run as. The files they write are theirs (mode 0400 unless the pod asks otherwise), and a
 * signal reaches only a process of the same user (or with CAP_KILL): so they run as the application's user when the
 * pod says which (the pod's runAsUser, or the same one on every application container). A sidecar that must signal
 * an application whose user is not known runs as root with CAP_KILL alone; otherwise the agent image's user.
 */
function agentUser(spec: V1PodSpec, request: InjectionRequest): V1SecurityContext {
  const pod = spec.securityContext;
  const users = new Set(spec.containers.map((c) => c.securityContext?.runAsUser ?? pod?.runAsUser));
  const groups = new Set(spec.containers.map((c) => c.securityContext?.runAsGroup ?? pod?.runAsGroup));
  const [user] = users;
  const [group] = groups;
  if (users.size === 1 && user !== undefined)
    return {
      runAsUser: user,
      ...(groups.size === 1 && group !== undefined ? { runAsGroup: group } : {}),
      ...(user !== 0 ? { runAsNonRoot: true } : {}),
      capabilities: { drop: ['ALL'] },
    };
  if (!request.onChange) return { capabilities: { drop: ['ALL'] } };
  const nonRoot = pod?.runAsNonRoot || spec.containers.some((c) => c.securityContext?.runAsNonRoot);
  if (nonRoot)
    throw new PodRefusedError(
      "annotation cofre.dev/on-change-signal: the sidecar must run as the application's user to signal it, and " +
        'the pod does not say which (runAsNonRoot without one runAsUser): set spec.securityContext.runAsUser',
    );
  return { runAsUser: 0, capabilities: { drop: ['ALL'], add: ['KILL'] } };
}

function agentContainer(
  name: string,
  command: readonly string[],
  settings: AgentSettings,
  env: V1EnvVar[],
  mounts: V1VolumeMount[],
  user: V1SecurityContext,
): V1Container {
  return {
    name,
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy,
    command: [...command],
    env,
    volumeMounts: mounts,
    // Small: the agent renders a few files and renews leases. The limit keeps a runaway agent from starving the app.
    resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '256Mi' } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, ...user },
  };
}

/** The command a container runs today, from its spec or the annotation; never from an image registry. */
function originalCommand(container: V1Container, request: InjectionRequest): string[] {
  const command = container.command?.length ? container.command : request.command;
  if (!command)
    throw new PodRefusedError(
      `container ${container.name} gets environment variables from Cofre, so its command must be known, but the ` +
        `pod spec gives it no command and the pod has no cofre.dev/command annotation (the injector never looks ` +
        `up an image's entrypoint in a registry): set the container's command, or annotate the pod with ` +
        `cofre.dev/command: '["/path/to/entrypoint", "arg"]'`,
    );
  return [...command, ...(container.args ?? [])];
}

function refuseConflicts(pod: V1Pod, request: InjectionRequest): void {
  const spec = pod.spec!;
  for (const volume of spec.volumes ?? [])
    if ([SECRETS_VOLUME, BIN_VOLUME, TOKEN_VOLUME, STATE_VOLUME, EXEC_STATE_VOLUME].includes(volume.name))
      throw new PodRefusedError(`the pod already has a volume named ${volume.name}, a name the injector uses`);
  for (const c of [...(spec.initContainers ?? []), ...spec.containers])
    if (c.name === SIDECAR_CONTAINER)
      throw new PodRefusedError(`the pod already has a container named ${c.name}, a name the injector uses`);
  for (const name of request.containers ?? [])
    if (!spec.containers.some((c) => c.name === name))
      throw new PodRefusedError(`annotation cofre.dev/containers: the pod has no container named ${name}`);
  if (request.containers && request.envItems.length === 0)
    throw new PodRefusedError('annotation cofre.dev/containers: no item is delivered as environment variables');
  if (request.onChange && !request.sidecar)
    throw new PodRefusedError(
      'annotation cofre.dev/on-change-signal: only the sidecar re-renders files and signals the app; add ' +
        'cofre.dev/sidecar: "true"',
    );
  // The sidecar signals a process of another container, which it can see only in a shared PID namespace.
  if (request.onChange && spec.shareProcessNamespace === false)
    throw new PodRefusedError(
      'annotation cofre.dev/on-change-signal: the sidecar can signal the app only when the containers share the ' +
        'process namespace, and the pod sets spec.shareProcessNamespace: false',
    );
  if (request.sidecar && request.fileItems.length === 0 && !request.envItems.some((i) => i.path !== undefined))
    throw new PodRefusedError(
      'annotation cofre.dev/sidecar: the sidecar keeps files up to date and renews the leases of credentials in ' +
        'env vars, and the pod has neither (no file item, no cofre.dev/creds- item delivered as env vars)',
    );
}

function refuseMountClash(container: V1Container, mounts: V1VolumeMount[]): void {
  for (const mount of mounts)
    if (container.volumeMounts?.some((m) => m.mountPath.replace(/\/+$/, '') === mount.mountPath))
      throw new PodRefusedError(
        `container ${container.name} already mounts something at ${mount.mountPath}, where the injector mounts ` +
          `${mount.name}` +
          (mount.name === SECRETS_VOLUME ? ' (choose another directory with cofre.dev/files-dir)' : ''),
      );
}

/** True when the pod has been through the injector already (a reinvocation): it is then left as it is. */
export function alreadyInjected(pod: V1Pod): boolean {
  return (pod.spec?.initContainers ?? []).some((c) => c.name === INIT_CONTAINER);
}

/** The patch for one opted-in pod; [] for a pod injected before. Throws PodRefusedError when it cannot be done. */
export function mutatePod(pod: V1Pod, request: InjectionRequest, settings: AgentSettings): PatchOperation[] {
  if (!pod.spec) throw new PodRefusedError('the pod has no spec');
  if (alreadyInjected(pod)) return [];
  refuseConflicts(pod, request);
  const spec = pod.spec;
  const ops: PatchOperation[] = [];
  const files = request.fileItems.length > 0;
  const envContainers = new Set(
    request.envItems.length > 0 ? (request.containers ?? spec.containers.map((c) => c.name)) : [],
  );

  // Credentials with a lease in env vars: the sidecar renews them for the exec runs (the agent's exec-leases.ts).
  const renewsEnv = request.sidecar && request.envItems.some((i) => i.path !== undefined);
  const volumes: V1Volume[] = [];
  if (files) volumes.push({ name: SECRETS_VOLUME, emptyDir: { medium: 'Memory' } });
  if (envContainers.size > 0) volumes.push({ name: BIN_VOLUME, emptyDir: {} });
  if (request.sidecar) volumes.push({ name: STATE_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
  if (renewsEnv) volumes.push({ name: EXEC_STATE_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
  volumes.push({
    name: TOKEN_VOLUME,
    projected: {
      sources: [
        {
          serviceAccountToken: {
            audience: request.audience,
            expirationSeconds: TOKEN_EXPIRATION_SECONDS,
            path: TOKEN_FILE,
          },
        },
      ],
    },
  });

  const tokenMount: V1VolumeMount = { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true };
  spec.containers.forEach((container, i) => {
    const at = `/spec/containers/${i}`;
    const mounts: V1VolumeMount[] = [];
    if (files) mounts.push({ name: SECRETS_VOLUME, mountPath: request.filesDir, readOnly: true });
    if (envContainers.has(container.name)) {
      mounts.push({ name: BIN_VOLUME, mountPath: BIN_DIR, readOnly: true }, tokenMount);
      // With a sidecar, exec leaves its leases for the sidecar to renew (exec-leases.ts in the agent), in a
      // directory of its own: never the agents' state volume, never another container's leases.
      if (renewsEnv) mounts.push({ name: EXEC_STATE_VOLUME, mountPath: EXEC_STATE_DIR, subPath: container.name });
      const command = originalCommand(container, request);
      ops.push({ op: 'add', path: `${at}/command`, value: [...EXEC_PREFIX, ...command] });
      if (container.args) ops.push({ op: 'remove', path: `${at}/args` });
      for (const probe of PROBES) {
        const exec = (container[probe] as V1Probe | undefined)?.exec;
        if (exec?.command?.length)
          ops.push({ op: 'replace', path: `${at}/${probe}/exec/command`, value: [...EXEC_PREFIX, ...exec.command] });
      }
      const execConfig = agentConfig(request, request.envItems, {
        ...(renewsEnv ? { stateFile: EXEC_STATE_FILE } : {}),
      });
      const env = agentEnv(settings, execConfig);
      for (const variable of env)
        if (container.env?.some((e) => e.name === variable.name))
          throw new PodRefusedError(
            `container ${container.name} already sets ${variable.name}, which the injector sets for the agent`,
          );
      append(ops, `${at}/env`, container.env, env);
    }
    refuseMountClash(container, mounts);
    append(ops, `${at}/volumeMounts`, container.volumeMounts, mounts);
  });

  const initMounts: V1VolumeMount[] = [];
  if (files) initMounts.push({ name: SECRETS_VOLUME, mountPath: AGENT_FILES_DIR });
  initMounts.push(tokenMount);
  if (envContainers.size > 0) initMounts.push({ name: BIN_VOLUME, mountPath: BIN_DIR });
  // With a sidecar, the init container hands its token and leases over through a volume no app container mounts.
  const stateFile = request.sidecar ? STATE_FILE : undefined;
  if (stateFile) initMounts.push({ name: STATE_VOLUME, mountPath: STATE_DIR });
  const initConfig = agentConfig(request, request.fileItems, { installTo: envContainers.size > 0, stateFile });
  // Both agents run as one user: the sidecar rewrites the init container's files and reads its state file.
  const user = agentUser(spec, request);
  const agents = [
    agentContainer(INIT_CONTAINER, INIT_COMMAND, settings, agentEnv(settings, initConfig), initMounts, user),
  ];
  if (request.sidecar) {
    const execStateFiles = renewsEnv ? [...envContainers].map((name) => execStateFile(name)) : [];
    const sidecarEnv = agentEnv(settings, agentConfig(request, request.fileItems, { stateFile, execStateFiles }));
    const sidecarMounts = initMounts.filter((m) => m.name !== BIN_VOLUME);
    if (renewsEnv) sidecarMounts.push({ name: EXEC_STATE_VOLUME, mountPath: EXEC_STATE_DIR, readOnly: true });
    // A native sidecar: an init container that keeps running beside the app and stops after it, so Jobs complete.
    agents.push({
      ...agentContainer(SIDECAR_CONTAINER, SIDECAR_COMMAND, settings, sidecarEnv, sidecarMounts, user),
      restartPolicy: 'Always',
    });
  }

  append(ops, '/spec/volumes', spec.volumes, volumes);
  if (request.onChange && !spec.shareProcessNamespace)
    ops.push({ op: 'add', path: '/spec/shareProcessNamespace', value: true });
  // Ours go first: the files are there before any other init container or app container starts.
  if (!spec.initContainers) ops.push({ op: 'add', path: '/spec/initContainers', value: agents });
  else agents.forEach((agent, i) => ops.push({ op: 'add', path: `/spec/initContainers/${i}`, value: agent }));
  if (!pod.metadata?.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
  ops.push({ op: 'add', path: `/metadata/annotations/${pointer(STATUS_ANNOTATION)}`, value: 'injected' });
  return ops;
}
