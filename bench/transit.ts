// Transit secrets engine throughput (issue 15): encrypt and decrypt requests per second, with p50/p99, through
// HTTP on `cofre server --dev`, and the same operations in process without HTTP (the engine's own cost).
//
//   node --import tsx bench/transit.ts
//
// The dev server runs as a child process (through tsx, as test/support.ts's spawnDevServer starts it); autocannon
// drives it on the same machine, so the load generator takes CPU from the server. For each key type: encrypt of
// 64 bytes, encrypt of 4 KiB, decrypt of 64 bytes, and a batch of 100 encryptions of 64 bytes (items/s = 100 x
// requests/s). Options (environment): BENCH_SECONDS (10), BENCH_CONNECTIONS (32).
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { rmSync } from 'node:fs';
import autocannon from 'autocannon';
import { newKey } from '../src/engines/transit/ciphers.js';
import type { TransitKey } from '../src/engines/transit/keys.js';
import { decryptWith, encryptWith } from '../src/engines/transit/use-key.js';
import { freePort, spawnDevServer, tempDir } from '../test/support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const TOKEN = 'bench-root';

async function call(url: string, path: string, body: unknown): Promise<{ data: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/${path}`, {
    method: 'POST',
    headers: { 'x-vault-token': TOKEN, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as { data: Record<string, unknown> }) : { data: {} };
}

function load(url: string, title: string, path: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/${path}`,
        method: 'POST',
        connections: CONNECTIONS,
        duration: SECONDS,
        headers: { 'x-vault-token': TOKEN, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      },
      (err, res) => {
        if (err) return reject(err);
        console.log(
          JSON.stringify({
            title,
            requestsPerSec: Math.round(res.requests.average),
            p50ms: res.latency.p50,
            p99ms: res.latency.p99,
            non2xx: res.non2xx,
            errors: res.errors,
          }),
        );
        resolve();
      },
    );
  });
}

/** The engine's own cost: encryptWith/decryptWith on a decoded key, no HTTP, no JSON, no ACL. */
function inProcess(type: TransitKey['type']): void {
  const key: TransitKey = {
    name: 'bench',
    type,
    versions: {},
    latest_version: 1,
    min_decryption_version: 1,
    min_encryption_version: 0,
    deletion_allowed: false,
    material: new Map([[1, newKey()]]),
  };
  const plaintext = randomBytes(64);
  const none = Buffer.alloc(0);
  const count = 100_000;
  let start = process.hrtime.bigint();
  let ciphertext = '';
  for (let i = 0; i < count; i++) ciphertext = encryptWith(key, plaintext, none).ciphertext;
  const encryptNs = Number(process.hrtime.bigint() - start);
  start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) decryptWith(key, ciphertext, none);
  const decryptNs = Number(process.hrtime.bigint() - start);
  console.log(
    JSON.stringify({
      title: `${type} in process, 64 B`,
      encryptsPerSec: Math.round(count / (encryptNs / 1e9)),
      decryptsPerSec: Math.round(count / (decryptNs / 1e9)),
    }),
  );
}

const dir = tempDir('bench-transit');
const port = await freePort();
const server = await spawnDevServer(dir, port, TOKEN);
try {
  console.log(
    `# machine: ${cpus().length} x ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
  );
  console.log(`# ${CONNECTIONS} connections, ${SECONDS} s each`);
  await call(server.url, 'sys/mounts/transit', { type: 'transit' });
  const small = randomBytes(64).toString('base64');
  const large = randomBytes(4096).toString('base64');
  for (const type of ['aes256-gcm96', 'chacha20-poly1305'] as const) {
    inProcess(type);
    const name = type === 'aes256-gcm96' ? 'aes' : 'chacha';
    await call(server.url, `transit/keys/${name}`, { type });
    const { data } = await call(server.url, `transit/encrypt/${name}`, { plaintext: small });
    await load(server.url, `${type} encrypt 64 B`, `transit/encrypt/${name}`, { plaintext: small });
    await load(server.url, `${type} encrypt 4 KiB`, `transit/encrypt/${name}`, { plaintext: large });
    await load(server.url, `${type} decrypt 64 B`, `transit/decrypt/${name}`, { ciphertext: data.ciphertext });
    await load(server.url, `${type} encrypt batch of 100 x 64 B (requests)`, `transit/encrypt/${name}`, {
      batch_input: Array.from({ length: 100 }, () => ({ plaintext: small })),
    });
  }
} finally {
  server.child.kill('SIGTERM');
  await new Promise((resolve) => server.child.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}
