import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ValueSealer } from './barrier.js';
import { CofreError, permissionDenied } from './errors.js';
import type { CeremonyCall } from './key-ceremonies.js';

/**
 * sys/generate-root and sys/rekey across the nodes of a PostgreSQL cluster. The attempts live in the leader's
 * memory (as Vault's, on its active node); another node sends each call to the leader's API address
 * (`sys/internal/key-ceremony`) and answers with what the leader answered.
 *
 * The leader's address comes from the store, which the threat model does not trust, and the call carries an
 * unseal key share. So the call and the answer cross the network sealed by the barrier (AES-256-GCM under the
 * keyring only unsealed nodes of this cluster hold), each under a context of its own: a server that is not an
 * unsealed node of this cluster can neither read a share nor forge a call or an answer, TLS or not.
 *
 * Replays: a call is refused after CALL_TTL_MS, and within it the leader runs each call once (ForwardedCalls): the
 * same call sent again, by a retry or by someone who captured it, gets the first answer again, so a captured share
 * cannot be made to count twice (for instance to complete a rekey whose new shares would then go back to whoever
 * replayed it). An answer must name the call it answers.
 */
export const FORWARD_PATH = 'sys/internal/key-ceremony';
/** No storage path begins with a NUL, so no stored entry opens under these (barrier.ts binds entries to paths). */
const CALL_CONTEXT = '\u0000cofre/key-ceremony/call/v1';
const REPLY_CONTEXT = '\u0000cofre/key-ceremony/reply/v1';
/** Long enough for a busy leader and the retries below, short enough that a captured call is useless soon after. */
const CALL_TTL_MS = 60_000;
const ATTEMPT_TIMEOUT_MS = 10_000;
/** Waits before the retries of a call whose answer did not come: the same call, which the leader runs once. */
const RETRY_DELAYS_MS = [500, 2_000];
/** Every answer is a small JSON object; a server that sends more is not a Cofre leader. */
const REPLY_MAX_BYTES = 64 * 1024;
/** Calls a leader remembers at most; operators send a handful a minute. */
const REMEMBERED_CALLS = 4_096;

interface SealedCall {
  id: string;
  at: number;
  call: Omit<CeremonyCall, 'key'> & { key?: string };
}

type Outcome = { id: string; value: unknown } | { id: string; error: { status: number; message: string } };

const OPS = new Set<string>([
  'root.status',
  'root.start',
  'root.cancel',
  'root.update',
  'rekey.status',
  'rekey.start',
  'rekey.cancel',
  'rekey.update',
  'rekey.verifyStatus',
  'rekey.verify',
  'rekey.restartVerification',
]);

/**
 * Sends one call to the leader at `leaderAddr` and returns its answer, or throws its error with its status. A call
 * whose answer did not come is sent again, as it is: the leader runs it once whatever the number of copies.
 */
export async function forwardCeremonyCall(
  sealer: ValueSealer,
  leaderAddr: string,
  call: CeremonyCall,
): Promise<unknown> {
  const url = leaderUrl(leaderAddr);
  const { id, sealed } = sealCeremonyCall(sealer, call);
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sealed }),
        // The address is the store's, not trusted: follow it and nowhere else.
        redirect: 'error',
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
    } catch (err) {
      const wait = RETRY_DELAYS_MS[attempt];
      if (wait !== undefined) {
        await sleep(wait);
        continue;
      }
      throw new CofreError(
        502,
        `the leader at ${url.origin} could not be reached (${(err as Error).message}); the call may or may not ` +
          'have been made there: read the attempt again before going on',
      );
    }
    return openAnswer(sealer, url, id, res);
  }
}

/** The leader's answer to call `id`; anything else (not sealed by this cluster, for another call) is refused. */
async function openAnswer(sealer: ValueSealer, url: URL, id: string, res: Response): Promise<unknown> {
  const text = await boundedText(res, url);
  if (res.status !== 200) {
    // Refusals before the leader could seal an answer (sealed, or the call did not open there) are not
    // authenticated: their status is reported, and their words, which anyone could have written, are not.
    throw new CofreError(
      502,
      `the server at ${url.origin} refused the forwarded call with status ${res.status}, in an answer not sealed ` +
        "by this cluster (is it an unsealed node of this cluster, and do the nodes' clocks agree?)",
    );
  }
  const body = parseJson(text);
  if (typeof body?.sealed !== 'string') throw badLeader(url);
  let outcome: Partial<Outcome>;
  try {
    outcome = JSON.parse(sealer.decryptValue(REPLY_CONTEXT, Buffer.from(body.sealed, 'base64')).toString('utf8'));
  } catch {
    throw badLeader(url);
  }
  if (outcome?.id !== id) throw badLeader(url);
  if ('error' in outcome) {
    const { status, message } = outcome.error ?? {};
    if (typeof status !== 'number' || typeof message !== 'string') throw badLeader(url);
    throw new CofreError(status, message);
  }
  if (!('value' in outcome)) throw badLeader(url);
  return outcome.value;
}

/** A call as it goes to the leader: sealed, stamped with the time, named by `id` for its answer. */
export function sealCeremonyCall(sealer: ValueSealer, call: CeremonyCall): { id: string; sealed: string } {
  const id = randomUUID();
  const plain: SealedCall = {
    id,
    at: Date.now(),
    call: 'key' in call ? { ...call, key: Buffer.from(call.key).toString('base64') } : call,
  };
  return { id, sealed: sealer.encryptValue(CALL_CONTEXT, Buffer.from(JSON.stringify(plain))).toString('base64') };
}

/**
 * Opens a call another node forwarded; throws 403 for anything this cluster's barrier did not seal, or sealed
 * too long ago.
 */
export function openForwardedCall(sealer: ValueSealer, sealed: string): { id: string; at: number; call: CeremonyCall } {
  let plain: SealedCall;
  try {
    plain = JSON.parse(sealer.decryptValue(CALL_CONTEXT, Buffer.from(sealed, 'base64')).toString('utf8'));
  } catch {
    throw permissionDenied('the forwarded call was not sealed by a node of this cluster');
  }
  // Sealed by a node of this cluster, so well formed; checked anyway, as every input is.
  if (typeof plain?.id !== 'string' || typeof plain.at !== 'number' || !OPS.has(plain.call?.op)) {
    throw permissionDenied('the forwarded call is not one this server knows');
  }
  if (Math.abs(Date.now() - plain.at) > CALL_TTL_MS) throw permissionDenied('the forwarded call has expired');
  const call = (
    typeof plain.call.key === 'string' ? { ...plain.call, key: Buffer.from(plain.call.key, 'base64') } : plain.call
  ) as CeremonyCall;
  return { id: plain.id, at: plain.at, call };
}

/** Seals the leader's answer (or its error, status kept) to the call `id`. */
export async function sealForwardedReply(
  sealer: ValueSealer,
  id: string,
  run: () => Promise<unknown>,
): Promise<string> {
  let outcome: Outcome;
  try {
    outcome = { id, value: (await run()) ?? null };
  } catch (err) {
    if (!(err instanceof CofreError)) throw err;
    outcome = { id, error: { status: err.status, message: err.message } };
  }
  return sealer.encryptValue(REPLY_CONTEXT, Buffer.from(JSON.stringify(outcome))).toString('base64');
}

/**
 * The leader's end: runs each forwarded call once, and answers a copy of a call (a retry, or a replay by whoever
 * captured it) with the first answer, sealed as it was. A call is remembered until it could no longer be opened.
 */
export class ForwardedCalls {
  private readonly answers = new Map<string, { answer: Promise<string>; forgetAt: number }>();

  constructor(
    private readonly sealer: ValueSealer,
    private readonly limit = REMEMBERED_CALLS,
  ) {}

  answer(sealed: string, run: (call: CeremonyCall) => Promise<unknown>): Promise<string> {
    const { id, at, call } = openForwardedCall(this.sealer, sealed);
    const now = Date.now();
    for (const [known, { forgetAt }] of this.answers) if (forgetAt <= now) this.answers.delete(known);
    const seen = this.answers.get(id);
    if (seen) return seen.answer;
    // Only nodes of the cluster can seal a call, so this is a flood of theirs: refuse rather than forget a call
    // that could still be replayed.
    if (this.answers.size >= this.limit) {
      throw new CofreError(503, 'too many forwarded key ceremony calls in the last minutes; retry later');
    }
    const answer = sealForwardedReply(this.sealer, id, () => run(call));
    // Opened only until `at` + CALL_TTL_MS (the clocks may differ by as much the other way, hence twice).
    this.answers.set(id, { answer, forgetAt: Math.max(now, at) + 2 * CALL_TTL_MS });
    return answer;
  }
}

function leaderUrl(leaderAddr: string): URL {
  let url: URL;
  try {
    url = new URL(`/v1/${FORWARD_PATH}`, leaderAddr);
  } catch {
    throw new CofreError(502, 'the leader has no usable API address in the store');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CofreError(502, 'the leader has no usable API address in the store');
  }
  return url;
}

/** The answer's text, refused past REPLY_MAX_BYTES without reading the rest. */
async function boundedText(res: Response, url: URL): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      // Leaving the loop cancels the rest of the body.
      if (size > REPLY_MAX_BYTES) {
        throw new CofreError(
          502,
          `the server at ${url.origin} sent more than ${REPLY_MAX_BYTES} bytes: not a leader's answer`,
        );
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function badLeader(url: URL): CofreError {
  return new CofreError(502, `the server at ${url.origin} did not answer as this cluster's leader`);
}
