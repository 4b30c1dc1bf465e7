// One Mount of the Secrets Store CSI Driver: log in to Cofre with the pod's service-account token (the driver's, or
// one minted through TokenRequest), read each object, and answer with the files and their versions. The driver
// writes the files; the provider never touches the pod's volume. A version is an HMAC of the file, never its content.
import { createHmac, randomBytes } from 'node:crypto';
import { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import type { FileMessage, MountRequestMessage, MountResponseMessage } from './grpc.js';
import { parseMountParameters, type MountParameters, type SecretObject } from './params.js';
import type { PodLeases } from './pod-leases.js';

export class MountError extends Error {}

/** Mints a service-account token for the pod (TokenRequest), when the driver sent none for the audience. */
export type TokenMinter = (params: MountParameters, audience: string | undefined) => Promise<string>;

export interface MounterOptions {
  /** Cofre's address when the SecretProviderClass gives no `cofreAddress`. */
  defaultAddress?: string;
  /** PEM of Cofre's CA when the SecretProviderClass gives no `cofreCACertPath`. */
  defaultCaCert?: string;
  minter?: TokenMinter;
  /** Dynamic credentials kept for their pod (renewed, reused at the next Mount, revoked with the pod). */
  podLeases?: PodLeases;
  log: (level: 'info' | 'warn', msg: string, fields?: object) => void;
}

const DEFAULT_MODE = 0o644;

export class Mounter {
  /** Versions are stable for this process's life; a restarted provider reports new ones once (a harmless rewrite). */
  private readonly versionKey = randomBytes(32);

  constructor(private readonly opts: MounterOptions) {}

  async mount(req: MountRequestMessage): Promise<MountResponseMessage> {
    const params = parseMountParameters(req.attributes);
    const address = params.cofreAddress ?? this.opts.defaultAddress;
    if (!address) throw new MountError('cofreAddress: is required (or start the provider with --cofre-address)');
    const client = new VaultClient({
      address: address.replace(/\/+$/, ''),
      ...(params.caCert ? { caCert: params.caCert } : {}),
      ...(!params.caCert && this.opts.defaultCaCert ? { caCertBytes: this.opts.defaultCaCert } : {}),
      ...(params.skipVerify ? { tlsSkipVerify: true } : {}),
    });
    // A login only when some object is not a credential this pod already holds.
    let auth: { token: string; ttl: number; renewable: boolean } | undefined;
    let leased = false;
    try {
      const defaultMode = parsePermission(req.permission);
      const files: FileMessage[] = [];
      for (const object of params.objects) {
        let contents = this.opts.podLeases?.cached(params.pod, object);
        if (!contents) {
          auth ??= await this.login(client, params);
          const read = await this.read(client, auth.token, object);
          contents = read.contents;
          if (read.lease) {
            leased = true;
            this.opts.podLeases?.hold(params.pod, { client, ...auth }, object, read.lease, contents);
          }
        }
        files.push({ path: object.objectName, mode: object.filePermission ?? defaultMode, contents });
      }
      const versions = files.map((f) => ({ id: f.path, version: this.version(f.contents) }));
      const before = new Map(req.current_object_version.map((v) => [v.id, v.version]));
      this.opts.log('info', 'mounted', {
        namespace: params.pod.namespace,
        pod: params.pod.name,
        objects: files.length,
        changed: versions.filter((v) => before.has(v.id) && before.get(v.id) !== v.version).map((v) => v.id),
      });
      return { object_version: versions, files, error: null };
    } finally {
      // A dynamic credential ends with the token that issued it: then the token is kept (and renewed with the pod).
      if (auth && !leased) await revoke(client, auth.token, this.opts.log);
    }
  }

  private version(contents: Buffer): string {
    return createHmac('sha256', this.versionKey).update(contents).digest('hex').slice(0, 32);
  }

  private async login(
    client: VaultClient,
    params: MountParameters,
  ): Promise<{ token: string; ttl: number; renewable: boolean }> {
    const audience = params.audience;
    let jwt = params.tokens[audience ?? '']?.token;
    if (!jwt && !audience && Object.keys(params.tokens).length === 1) jwt = Object.values(params.tokens)[0]!.token;
    if (!jwt) {
      if (!this.opts.minter)
        throw new MountError(
          `no service-account token for audience "${audience ?? ''}" in csi.storage.k8s.io/serviceAccount.tokens ` +
            "(add it to the CSIDriver's tokenRequests), and this provider cannot mint one (no Kubernetes access)",
        );
      jwt = await this.opts.minter(params, audience);
    }
    const where = `auth/${params.authMountPath} as role "${params.roleName}" for ${params.pod.namespace}/${params.pod.serviceAccount}`;
    try {
      const res = (await client.request('POST', `auth/${params.authMountPath}/login`, {
        body: { role: params.roleName, jwt },
        what: `logging in to ${where}`,
      })) as { auth?: { client_token?: string; lease_duration?: number; renewable?: boolean } } | null;
      const token = res?.auth?.client_token;
      if (!token) throw new MountError(`login to ${where} returned no token`);
      return { token, ttl: res?.auth?.lease_duration ?? 0, renewable: res?.auth?.renewable !== false };
    } catch (err) {
      if (err instanceof MountError) throw err;
      throw new MountError(`login to ${where} failed: ${detail(err)}`);
    }
  }

  private async read(
    client: VaultClient,
    token: string,
    object: SecretObject,
  ): Promise<{ contents: Buffer; lease?: { id: string; duration: number; renewable: boolean } }> {
    const what = `object "${object.objectName}": ${object.method} ${object.secretPath}`;
    let res: {
      data?: Record<string, unknown>;
      lease_id?: string;
      lease_duration?: number;
      renewable?: boolean;
    } | null;
    try {
      res = (await client.request(object.method, object.secretPath, {
        token,
        ...(object.method !== 'GET' ? { body: object.secretArgs ?? {} } : {}),
        what,
      })) as typeof res;
    } catch (err) {
      throw new MountError(`${what} failed: ${detail(err)}`);
    }
    let data = res?.data;
    if (!data) throw new MountError(`${what}: the answer has no data`);
    // KV version 2 answers { data: { data, metadata } }: the secret is the inner data, as Vault's provider reads it.
    if (isObject(data.data) && isObject(data.metadata)) data = data.data;
    let value: unknown = data;
    if (object.secretKey !== undefined) {
      if (!(object.secretKey in data)) throw new MountError(`${what}: the secret has no key "${object.secretKey}"`);
      value = data[object.secretKey];
    }
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    let contents: Buffer;
    if (object.encoding === 'utf-8') contents = Buffer.from(text, 'utf8');
    else {
      const valid = object.encoding === 'hex' ? /^([0-9a-fA-F]{2})*$/ : /^[A-Za-z0-9+/_-]*={0,2}$/;
      if (!valid.test(text.trim()))
        throw new MountError(`${what}: the value is not ${object.encoding} (encoding: ${object.encoding})`);
      contents = Buffer.from(text.trim(), object.encoding === 'hex' ? 'hex' : 'base64');
    }
    return {
      contents,
      ...(res?.lease_id
        ? { lease: { id: res.lease_id, duration: res.lease_duration ?? 0, renewable: res.renewable !== false } }
        : {}),
    };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The driver's `permission` is a JSON number (decimal mode bits); empty means the default. */
function parsePermission(permission: string): number {
  if (!permission) return DEFAULT_MODE;
  const mode = Number(JSON.parse(permission));
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777)
    throw new MountError(`permission "${permission}" is not a file mode`);
  return mode;
}

function detail(err: unknown): string {
  return err instanceof ApiError ? `${err.status}: ${err.errors.join('; ')}` : (err as Error).message;
}

async function revoke(client: VaultClient, token: string, log: MounterOptions['log']): Promise<void> {
  try {
    await client.request('PUT', 'auth/token/revoke-self', { token, body: {}, what: 'revoking the mount token' });
  } catch (err) {
    log('warn', 'could not revoke the mount token', { error: detail(err) });
  }
}
