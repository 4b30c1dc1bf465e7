/**
 * Two groups of writers appending to the change log at once, and the check that every acknowledged write has its
 * event: used by test/change-log-writers.test.ts and bench/change-log-writers.ts.
 */
import { changeOf, replayEvents } from './event-replay.js';

export interface WriterGroups {
  /** One URL per group: a node each, or one server's for both. */
  urls: string[];
  token: string;
  /** Secrets per group, versions of each, requests at a time per group. */
  keys: number;
  rounds: number;
  concurrency: number;
}

/** Where the writes go: a KV v2 mount of its own (a dev server has secret/ already). */
const MOUNT = 'writers';

/**
 * Mounts KV v2 at writers/ through the first URL, then has each group write its own secrets ("g<group>k<n>")
 * `rounds` times. Returns "writers/<name>@<version>" of every acknowledged write.
 */
export async function writeFromTwoGroups(w: WriterGroups): Promise<string[]> {
  await request(w, w.urls[0]!, 'POST', `sys/mounts/${MOUNT}`, { type: 'kv', options: { version: '2' } });
  // Another node hears of the new mount through its notification: each group starts once its URL serves it.
  for (const url of w.urls) {
    for (let i = 0; !(await mounted(w, url)); i++) {
      if (i >= 100) throw new Error(`${url} did not see the ${MOUNT}/ mount in 5 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const groups = await Promise.all([0, 1].map((g) => writeGroup(w, g)));
  return groups.flat();
}

async function writeGroup(w: WriterGroups, g: number): Promise<string[]> {
  const url = w.urls[g % w.urls.length]!;
  const acknowledged: string[] = [];
  // Writer n owns the secrets whose number is n modulo the concurrency, so each secret's versions come in order.
  await Promise.all(
    Array.from({ length: w.concurrency }, async (_, n) => {
      for (let round = 0; round < w.rounds; round++) {
        for (let k = n; k < w.keys; k += w.concurrency) {
          const name = `g${g}k${k}`;
          const body = (await request(w, url, 'POST', `${MOUNT}/data/${name}`, { data: { round } })) as {
            data: { version: number };
          };
          acknowledged.push(`${MOUNT}/${name}@${body.data.version}`);
        }
      }
    }),
  );
  return acknowledged;
}

/**
 * Which of `acknowledged` the change log lacks, replayed from index 0 on `url`: read until every one is seen, or
 * until the stream has been quiet for 3 s (the node may still be hearing another's last events).
 */
export async function missingChanges(url: string, token: string, acknowledged: string[]): Promise<string[]> {
  const unseen = new Set(acknowledged);
  await replayEvents(url, token, {
    frame: (frame) => {
      const change = changeOf(frame);
      if (change) unseen.delete(`${change.path}@${change.version}`);
      return unseen.size === 0;
    },
    quietMs: 3000,
  });
  return acknowledged.filter((change) => unseen.has(change));
}

async function mounted(w: WriterGroups, url: string): Promise<boolean> {
  const mounts = (await request(w, url, 'GET', 'sys/mounts')) as { data: Record<string, unknown> };
  return `${MOUNT}/` in mounts.data;
}

async function request(w: WriterGroups, url: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${url}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': w.token, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
