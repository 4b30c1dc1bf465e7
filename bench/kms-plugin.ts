// Encrypt and Decrypt latency of `cofre kms-plugin` as kube-apiserver calls it: the plugin as its own process
// (through tsx) on a unix socket, logged in with AppRole to an in-process Cofre server on SQLite whose transit key
// wraps 32-byte data keys (what the API server's KMS v2 sends: a DEK seed). BENCH_CALLS (500) of each, one at a
// time, then BENCH_CONCURRENCY (16) in flight.
//   node --import tsx bench/kms-plugin.ts
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { kmsService, type EncryptResponse } from '../src/kube/kms-plugin/grpc.js';
import { startServer, writeOk } from '../test/support.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const summary = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => +s[Math.min(s.length - 1, Math.floor(s.length * p))]!.toFixed(2);
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: +s.at(-1)!.toFixed(2) };
};

const srv = await startServer();
const dir = mkdtempSync(path.join(os.tmpdir(), 'cofre-bench-kms-'));
await writeOk(srv.api, 'sys/mounts/transit', { type: 'transit' });
await writeOk(srv.api, 'transit/keys/kube', {});
await writeOk(srv.api, 'sys/policies/acl/kms', {
  policy:
    'path "transit/encrypt/kube" { capabilities = ["update"] }\npath "transit/decrypt/kube" { capabilities = ["update"] }\n' +
    'path "transit/keys/kube" { capabilities = ["read"] }\n',
});
await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
await writeOk(srv.api, 'auth/approle/role/kms', { token_policies: ['kms'] });
writeFileSync(
  path.join(dir, 'role-id'),
  (await srv.api.call('GET', 'auth/approle/role/kms/role-id')).body.data.role_id,
);
writeFileSync(
  path.join(dir, 'secret-id'),
  (await writeOk(srv.api, 'auth/approle/role/kms/secret-id')).body.data.secret_id,
);
const socket = path.join(dir, 'kms.sock');
const plugin = spawn(
  process.execPath,
  [
    ...[
      '--import',
      'tsx',
      'src/cli/main.ts',
      'kms-plugin',
      '--socket',
      socket,
      '--cofre-address',
      srv.url,
      '--key',
      'kube',
    ],
    ...['--approle-role-id-file', path.join(dir, 'role-id'), '--approle-secret-id-file', path.join(dir, 'secret-id')],
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
try {
  for (let i = 0; !existsSync(socket); i++) {
    if (i > 300) throw new Error('the plugin did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const client = new (kmsService())(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as {
    Encrypt(r: object, cb: (e: grpc.ServiceError | null, r: EncryptResponse) => void): void;
    Decrypt(r: object, cb: (e: grpc.ServiceError | null, r: { plaintext: Buffer }) => void): void;
    close(): void;
  };
  const encrypt = () =>
    new Promise<{ ms: number; res: EncryptResponse }>((resolve, reject) => {
      const t = performance.now();
      client.Encrypt({ plaintext: randomBytes(32), uid: 'b' }, (e, res) =>
        e ? reject(e) : resolve({ ms: performance.now() - t, res }),
      );
    });
  const decrypt = (res: EncryptResponse) =>
    new Promise<number>((resolve, reject) => {
      const t = performance.now();
      client.Decrypt({ ciphertext: res.ciphertext, uid: 'b', key_id: res.key_id }, (e) =>
        e ? reject(e) : resolve(performance.now() - t),
      );
    });
  for (let i = 0; i < 50; i++) await decrypt((await encrypt()).res); // warm-up
  const seqEnc: number[] = [];
  const seqDec: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const { ms, res } = await encrypt();
    seqEnc.push(ms);
    seqDec.push(await decrypt(res));
  }
  const conEnc: number[] = [];
  const conDec: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < CALLS) {
        const { ms, res } = await encrypt();
        conEnc.push(ms);
        conDec.push(await decrypt(res));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  client.close();
  process.stdout.write(
    `${JSON.stringify(
      {
        machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, load: os.loadavg() },
        sequential: { encryptMs: summary(seqEnc), decryptMs: summary(seqDec) },
        concurrent: {
          concurrency: CONCURRENCY,
          encryptMs: summary(conEnc),
          decryptMs: summary(conDec),
          callsPerSecond: +((2 * CALLS) / seconds).toFixed(0),
        },
      },
      null,
      2,
    )}\n`,
  );
} finally {
  plugin.kill('SIGTERM');
  await srv.stop();
  rmSync(dir, { recursive: true, force: true });
}
