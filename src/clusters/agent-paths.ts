import type { PathRecord, StreamFrame } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { badRequest, permissionDenied } from '../core/errors.js';
import { whenCallerTokenGone } from '../core/caller-token-watch.js';
import { authView } from '../core/token-views.js';
import { isDnsLabel } from './labels.js';
import { clustersOf } from './service.js';
import type { DeliveryReport } from './store.js';

/**
 * With nothing to say, the stream says `ping` this often: dead connections show, and the token is checked again.
 * A revocation or expiry ends the stream at once (whenCallerTokenGone); this check is the fallback.
 */
const PING_MS = 30_000;
/** A report's notes per delivery (one per item written other than asked for): bounded like its error. */
const MAX_NOTES = 64;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function parseReports(value: unknown): Record<string, DeliveryReport> {
  if (value === undefined) return {};
  if (!isObject(value)) throw badRequest('"deliveries" must be a map of delivery name to report');
  const out: [string, DeliveryReport][] = [];
  for (const [name, raw] of Object.entries(value)) {
    if (!isDnsLabel(name)) throw badRequest(`deliveries: "${name}" is not a delivery name`);
    if (!isObject(raw)) throw badRequest(`deliveries["${name}"] must be an object`);
    const revision = raw.revision;
    if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
      throw badRequest(`deliveries["${name}"].revision must be a non-negative integer`);
    }
    if (raw.applied_at !== undefined && typeof raw.applied_at !== 'string') {
      throw badRequest(`deliveries["${name}"].applied_at must be an RFC 3339 string`);
    }
    if (raw.error !== undefined && raw.error !== null && typeof raw.error !== 'string') {
      throw badRequest(`deliveries["${name}"].error must be a string`);
    }
    const pods: [string, number][] = [];
    if (raw.pods !== undefined) {
      if (!isObject(raw.pods)) throw badRequest(`deliveries["${name}"].pods must be a map of revision to count`);
      for (const [rev, count] of Object.entries(raw.pods)) {
        if (!/^\d+$/.test(rev) || typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
          throw badRequest(`deliveries["${name}"].pods must map revisions to pod counts`);
        }
        pods.push([rev, count]);
      }
    }
    const notes = raw.notes ?? [];
    if (!Array.isArray(notes) || notes.length > MAX_NOTES || !notes.every((n) => typeof n === 'string')) {
      throw badRequest(`deliveries["${name}"].notes must be a list of at most ${MAX_NOTES} strings`);
    }
    out.push([
      name,
      {
        revision,
        applied_at: (raw.applied_at as string | undefined) ?? '',
        ...(typeof raw.error === 'string' && raw.error !== '' ? { error: raw.error.slice(0, 1024) } : {}),
        pods: Object.fromEntries(pods),
        ...(notes.length > 0 ? { notes: (notes as string[]).map((n) => n.slice(0, 512)) } : {}),
      },
    ]);
  }
  return Object.fromEntries(out);
}

/** sys/cofre/agent/*: enrolment and login (no token), then what a cluster's agent token may do for its own cluster. */
export function clusterAgentPaths(core: Core): PathRecord[] {
  const service = clustersOf(core);
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  return [
    {
      pattern: 'cofre/agent/enrol',
      summary: "Enrols a cluster agent's public keys with a single-use bootstrap token.",
      unauthenticated: true,
      rejectUnknownFields: true,
      fields: {
        bootstrap_token: { type: 'string', description: 'The single-use bootstrap token.', required: true },
        sealing_key: { type: 'string', description: 'Raw X25519 public key, base64url.', required: true },
        signing_key: { type: 'string', description: 'Raw Ed25519 public key, base64url.', required: true },
        agent_version: { type: 'string', description: "The agent's version." },
      },
      operations: {
        update: async (req) => {
          const cluster = await service.enrol(
            text(req.data.bootstrap_token),
            text(req.data.sealing_key),
            text(req.data.signing_key),
            text(req.data.agent_version),
          );
          return { data: { cluster_id: cluster.clusterId, name: cluster.name } };
        },
      },
    },
    {
      pattern: 'cofre/agent/login',
      summary: 'Logs a cluster agent in with a signature of its enrolled Ed25519 key.',
      unauthenticated: true,
      rejectUnknownFields: true,
      fields: {
        cluster_id: { type: 'string', description: 'The cluster id from the enrolment.', required: true },
        timestamp: { type: 'string', description: "RFC 3339, within 60 s of the server's clock.", required: true },
        nonce: { type: 'string', description: '16 random bytes, base64url, never used before.', required: true },
        signature: { type: 'string', description: 'Ed25519 signature, base64url.', required: true },
      },
      operations: {
        update: async (req) => {
          const cluster = await service.verifyLogin({
            cluster_id: text(req.data.cluster_id),
            timestamp: text(req.data.timestamp),
            nonce: text(req.data.nonce),
            signature: text(req.data.signature),
          });
          const { token, entry } = await core.tokens.create(service.agentToken(cluster));
          // Deregistered while the token was being made: it goes at once (and is refused by agentOf anyway).
          if (!(await service.store.clusterById(cluster.clusterId))) {
            await core.tokens.revokeTree(entry.hash);
            throw permissionDenied('login refused');
          }
          return { auth: authView(entry, token) };
        },
      },
    },
    {
      pattern: 'cofre/agent/bundles',
      summary: "The cluster's set: every delivery it should hold, at its revision (0: remove).",
      operations: {
        read: async (req) => {
          const cluster = await service.agentOf(req.caller);
          return { data: { cluster_id: cluster.clusterId, deliveries: await service.setFor(cluster) } };
        },
      },
    },
    {
      pattern: 'cofre/agent/bundles/(?<delivery>[^/]+)',
      summary: "One delivery's bundle, sealed to the cluster's key.",
      operations: {
        read: async (req) => {
          const cluster = await service.agentOf(req.caller);
          const bundle = await service.bundleFor(cluster, req.params.delivery ?? '');
          return {
            data: {
              delivery: bundle.delivery,
              namespace: bundle.namespace,
              revision: bundle.revision,
              bundle: bundle.bundle,
            },
          };
        },
      },
    },
    {
      pattern: 'cofre/agent/stream',
      summary:
        "Streams changes of the cluster's set as server-sent events: hello with the set, then {delivery, revision}.",
      fields: { index: { type: 'int', description: 'The last event id seen (Last-Event-ID); hello resends the set.' } },
      operations: {
        read: async (req) => {
          const caller = req.caller!;
          const cluster = await service.agentOf(caller);
          await service.touch(cluster);
          async function* frames(signal: AbortSignal): AsyncGenerator<StreamFrame> {
            const connection = service.connect(cluster, []);
            const onAbort = (): void => connection.wakeUp();
            signal.addEventListener('abort', onAbort);
            const ping = setInterval(() => connection.tick(), PING_MS);
            // Its token revoked or expired (here or on another node), the stream ends at once: not at its next
            // change or ping (the tick has the loop below look the token up and say so).
            const unwatch = whenCallerTokenGone(core.tokens, caller, () => connection.tick());
            try {
              const set = await service.setFor(cluster);
              connection.greet(set);
              // Anything that changed between connecting and reading the set is compared again.
              service.refan();
              const hello = { cluster_id: cluster.clusterId, deliveries: set };
              yield { id: service.fanOut.nextId(), event: 'hello', data: JSON.stringify(hello) };
              while (!signal.aborted) {
                const changes = await connection.next(signal);
                if (signal.aborted) return;
                if (core.sealed) {
                  yield { event: 'error', data: JSON.stringify({ error: 'Vault is sealed' }) };
                  return;
                }
                const live = !connection.closed && (await core.tokens.lookupByHash(caller.tokenId)) !== undefined;
                if (!live) {
                  yield {
                    event: 'error',
                    data: JSON.stringify({ error: 'cluster deregistered or token revoked or expired' }),
                  };
                  return;
                }
                if (changes.length === 0) yield { event: 'ping', data: '{}' };
                for (const change of changes) {
                  yield { id: service.fanOut.nextId(), event: 'delivery', data: JSON.stringify(change) };
                }
              }
            } finally {
              clearInterval(ping);
              unwatch();
              signal.removeEventListener('abort', onAbort);
              service.fanOut.remove(connection);
            }
          }
          return { stream: frames };
        },
      },
    },
    {
      pattern: 'cofre/agent/report',
      summary: 'An agent reports its version, health and per delivery what it applied.',
      rejectUnknownFields: true,
      fields: {
        agent_version: { type: 'string', description: "The agent's version." },
        health: { type: 'string', description: 'ok, degraded, …' },
        deliveries: {
          type: 'map',
          description: '{<name>: {revision, applied_at, error?, pods: {<revision>: count}, notes?: [string]}}',
        },
      },
      operations: {
        update: async (req) => {
          const cluster = await service.agentOf(req.caller);
          const reports = parseReports(req.data.deliveries);
          await service.report(
            cluster,
            text(req.data.agent_version).slice(0, 128),
            text(req.data.health).slice(0, 256),
            reports,
          );
          return undefined;
        },
      },
    },
  ];
}
