/**
 * Two groups of writers appending to the change log at once, and the check that every acknowledged write has its
 * event: used by test/change-log-writers.test.ts and bench/change-log-writers.ts.
 */

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
  // Another node hears of the new mount through its notification.
  await new Promise((r) => setTimeout(r, 500));
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
 * Every change event that a stream from index 0 replays from the store, as "path@version": read until the event
 * at the index its hello names (where the stored backlog ends), or refused after `timeoutMs`.
 */
export async function replayChanges(url: string, token: string, timeoutMs = 30_000): Promise<Set<string>> {
  const seen = new Set<string>();
  const res = await fetch(`${url}/v1/sys/cofre/events?index=0`, {
    headers: { 'x-vault-token': token },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) throw new Error(`events stream: ${res.status} ${await res.text()}`);
  let end: number | undefined;
  let text = '';
  for await (const chunk of res.body!) {
    text += Buffer.from(chunk).toString();
    let at: number;
    while ((at = text.indexOf('\n\n')) >= 0) {
      const frame = text.slice(0, at);
      text = text.slice(at + 2);
      const kind = /^event: (.*)$/m.exec(frame)?.[1];
      const data = JSON.parse(/^data: (.*)$/m.exec(frame)?.[1] ?? 'null') as {
        index?: number;
        path?: string;
        version?: number;
      } | null;
      if (kind === 'hello') end = data?.index ?? 0;
      if (kind === 'change') seen.add(`${data?.path}@${data?.version}`);
      if (end !== undefined && (end === 0 || (kind === 'change' && (data?.index ?? 0) >= end))) {
        // Leaving the loop cancels the stream.
        return seen;
      }
    }
  }
  throw new Error('events stream ended before its backlog did');
}

async function request(w: WriterGroups, url: string, method: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${url}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': w.token, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
