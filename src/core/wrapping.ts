import { Readable } from 'node:stream';
import type { Response, WrappingToken } from './backend.js';
import type { Core } from './core.js';
import { CUBBYHOLE_PATH, cubbyholeKey, destroyCubbyhole } from './cubbyhole.js';
import { envelope } from './envelope.js';
import { badRequest, CofreError } from './errors.js';
import { RESPONSE_WRAPPING_POLICY_NAME } from './policy/builtin.js';
import type { Storage } from './storage.js';
import { getJson, jsonBytes } from './storage-view.js';

/**
 * Response wrapping, as Vault's vault/wrapping.go: the answer to a request is stored in the cubbyhole of a new
 * single-use token (an orphan with only the `response-wrapping` policy, living as long as the wrap TTL) and the
 * client gets that token instead. Whoever holds it can unwrap it once (sys/wrapping/unwrap); then, or when its
 * TTL runs out, the token is revoked and its cubbyhole, with the answer, destroyed.
 */

/** Vault's words for a wrapping token that is used, expired, revoked or no wrapping token at all (a 400). */
export const INVALID_WRAPPING_TOKEN = 'wrapping token is not valid or does not exist';
export const invalidWrappingToken = (): CofreError => badRequest(INVALID_WRAPPING_TOKEN);

/** Keys in a wrapping token's cubbyhole, as Vault names them. */
const RESPONSE_KEY = 'response';
const WRAPINFO_KEY = 'wrapinfo';

interface StoredResponse {
  /** The answer as the client would have had it, JSON text (as Vault stores it). */
  response: string;
}

export interface StoredWrapInfo {
  creation_ttl: number;
  creation_time: string;
  creation_path: string;
}

export interface WrapRequest {
  /** The client's X-Vault-Wrap-TTL in seconds; 0: not asked. */
  requestTtl: number;
  requestPath: string;
  requestId: string;
  mountType: string;
}

function cubbyhole(core: Core): Storage {
  const mounted = core.mounts.get('mounts', CUBBYHOLE_PATH);
  if (!mounted) throw new Error('the cubbyhole is not mounted');
  return mounted.storage;
}

/**
 * Ends an answer's stream that will not be sent (a snapshot's holds a read view of the store open: a PostgreSQL
 * transaction, or a copy of the SQLite file, until it is read to the end or destroyed). True if there was one.
 */
export function discardStream(response: Response | undefined): boolean {
  if (!(response?.rawBody instanceof Readable)) return false;
  response.rawBody.destroy();
  return true;
}

/** The TTL a response is wrapped for: the shorter of the client's and the handler's, as Vault picks it. */
function wrapTtlFor(response: Response | undefined, requestTtl: number): number {
  const asked = response?.wrap?.ttl ?? 0;
  if (requestTtl > 0 && (asked === 0 || requestTtl < asked)) return requestTtl;
  return asked;
}

/**
 * Wraps a successful answer when the client or the handler asked for it, and returns what the client gets
 * instead: only wrap_info and the warnings. An empty answer (204) and a refusal are not wrapped, as in Vault.
 * Nothing half-done stays behind: if the answer cannot be stored, the new token is revoked and the request fails.
 */
export async function wrapResponse(
  core: Core,
  response: Response | undefined,
  request: WrapRequest,
): Promise<Response | undefined> {
  const ttl = wrapTtlFor(response, request.requestTtl);
  if (!response || ttl <= 0 || (response.status ?? 200) >= 400) return response;
  if (discardStream(response)) {
    throw badRequest(
      'this answer is a stream (a snapshot) and cannot be response-wrapped: ask without X-Vault-Wrap-TTL',
    );
  }
  const body = response.wrap?.body ?? JSON.stringify(wrappedBody(response, request));
  const creationPath = response.wrap?.creationPath ?? request.requestPath;
  const creationTime = new Date().toISOString();
  const { token, entry } = await core.tokens.create({
    policies: [RESPONSE_WRAPPING_POLICY_NAME],
    displayName: '',
    numUses: 1,
    ttl,
    explicitMaxTtl: ttl,
    renewable: false,
    parentHash: '',
    path: request.requestPath,
  });
  const info: StoredWrapInfo = { creation_ttl: ttl, creation_time: creationTime, creation_path: creationPath };
  try {
    await cubbyhole(core).transaction([
      { op: 'put', key: cubbyholeKey(entry.hash, RESPONSE_KEY), value: jsonBytes({ response: body }) },
      { op: 'put', key: cubbyholeKey(entry.hash, WRAPINFO_KEY), value: jsonBytes(info) },
    ]);
    // Revoked meanwhile (its lease's prefix revoked by an unmount, say): its cubbyhole may have been destroyed
    // before the answer landed, and the answer must not outlive the token.
    if (!(await core.tokens.stillLive(entry.hash))) throw invalidWrappingToken();
  } catch (err) {
    await core.tokens.revokeTree(entry.hash).catch(() => undefined);
    await destroyCubbyhole(cubbyhole(core), entry.hash).catch(() => undefined);
    throw err;
  }
  return {
    wrapInfo: {
      token,
      accessor: entry.accessor,
      ttl,
      creationTime,
      creationPath,
      wrappedAccessor: response.auth?.accessor ?? '',
    },
    ...(response.warnings ? { warnings: response.warnings } : {}),
  };
}

/**
 * A wrap that failed leaves nothing the client could never have: the token or lease the unwrapped answer handed
 * out is revoked (the client got an error, not the answer). Best effort: the failure is what the client hears.
 */
export async function revokeUnsent(core: Core, response: Response | undefined): Promise<void> {
  const accessor = response?.auth?.accessor;
  const issued = accessor ? await core.tokens.lookupAccessor(accessor).catch(() => undefined) : undefined;
  if (issued) await core.tokens.revokeTree(issued.hash).catch(() => undefined);
  const leaseId = response?.lease?.leaseId;
  if (leaseId) await core.expiration.revoke(leaseId).catch(() => undefined);
}

/** The answer as it would have been sent; a raw body only when it is JSON (a stream or text cannot be wrapped). */
function wrappedBody(response: Response, request: WrapRequest): unknown {
  if (response.stream) throw badRequest('a streamed response cannot be wrapped');
  if (response.rawBody !== undefined) {
    if (response.rawBody === null || typeof response.rawBody !== 'object' || Buffer.isBuffer(response.rawBody)) {
      throw badRequest('this response cannot be wrapped: it is not JSON');
    }
    return response.rawBody;
  }
  return envelope(response, request.requestId, request.mountType);
}

/**
 * The wrapping token a sys/wrapping request names: the body's `token`, else the request's own token. Checked
 * before the request is authorised, as Vault does: an unknown, used, expired or non-wrapping token is a 400.
 */
export async function validateWrappingToken(
  core: Core,
  body: Record<string, unknown>,
  requestToken: string | undefined,
): Promise<WrappingToken> {
  const named = body.token;
  let token = requestToken ?? '';
  let thirdParty = false;
  if (named !== undefined && named !== null) {
    if (typeof named !== 'string') throw validationError('could not decode token in request body');
    if (named === '') throw validationError('empty token in request body');
    token = named;
    // The holder of the wrapping token naming it in the body too is still unwrapping it themselves.
    thirdParty = named !== requestToken;
  }
  if (token === '') throw validationError('token is empty');
  const entry = await core.tokens.lookup(token);
  if (!entry || entry.policies.length !== 1 || entry.policies[0] !== RESPONSE_WRAPPING_POLICY_NAME) {
    throw invalidWrappingToken();
  }
  return { token, entry, thirdParty };
}

function validationError(why: string): CofreError {
  return new CofreError(403, `error validating wrapping token: ${why}`);
}

/**
 * Runs `use` with the one use of a wrapping token someone else names (the request's own token was taken by the
 * request itself), under the token's lock: of racing unwraps, exactly one gets it and the others are told the
 * token is not valid. The token is revoked once `use` is done with it, whatever it did.
 */
export async function withWrappingToken<T>(core: Core, wrapping: WrappingToken, use: () => Promise<T>): Promise<T> {
  if (wrapping.thirdParty) {
    try {
      await core.tokens.use(wrapping.entry);
    } catch {
      throw invalidWrappingToken();
    }
  }
  try {
    return await use();
  } finally {
    // Its own holder's token goes with the request's use of it.
    if (wrapping.thirdParty) await core.tokens.revokeTree(wrapping.entry.hash);
  }
}

/** The stored answer of a wrapping token, as JSON text. */
export async function wrappedResponse(core: Core, wrapping: WrappingToken): Promise<string> {
  const stored = await getJson<StoredResponse>(cubbyhole(core), cubbyholeKey(wrapping.entry.hash, RESPONSE_KEY));
  if (!stored || typeof stored.response !== 'string') {
    throw new CofreError(400, 'no information found; wrapping token may be from a previous Vault version');
  }
  return stored.response;
}

/** What sys/wrapping/lookup shows of a wrapping token. */
export async function wrapInfoOf(core: Core, wrapping: WrappingToken): Promise<StoredWrapInfo> {
  const info = await getJson<StoredWrapInfo>(cubbyhole(core), cubbyholeKey(wrapping.entry.hash, WRAPINFO_KEY));
  if (!info) throw new CofreError(400, 'no information found; wrapping token may be from a previous Vault version');
  return info;
}
