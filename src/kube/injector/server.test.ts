import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startInjectorServer, type InjectorServer } from './server.js';

const execFileP = promisify(execFile);

/** A CA and a certificate it signs for 127.0.0.1, under `name`.crt/.key and `name`-ca.crt in `dir`. */
async function certificate(dir: string, name: string): Promise<string> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'];
  const openssl = (args: string[]) => execFileP('openssl', args, { cwd: dir });
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-subj',
    `/CN=${name}-ca`,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.crt`,
  ]);
  await openssl([
    ...['req', '-x509', ...ec, '-CA', `${name}-ca.crt`, '-CAkey', `${name}-ca.key`, '-subj', `/CN=${name}`],
    ...['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${name}.key`, '-out', `${name}.crt`],
  ]);
  return readFileSync(path.join(dir, `${name}-ca.crt`), 'utf8');
}

function request(port: number, ca: string, method: string, urlPath: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: urlPath, method, ca, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('injector HTTPS server', () => {
  let dir: string;
  let server: InjectorServer;
  let firstCa: string;
  let secondCa: string;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cofre-injector-'));
    [firstCa, secondCa] = await Promise.all([certificate(dir, 'first'), certificate(dir, 'second')]);
    await execFileP('cp', ['first.crt', 'serving.crt'], { cwd: dir });
    await execFileP('cp', ['first.key', 'serving.key'], { cwd: dir });
    server = await startInjectorServer({
      listen: '127.0.0.1:0',
      tlsCertFile: path.join(dir, 'serving.crt'),
      tlsKeyFile: path.join(dir, 'serving.key'),
      defaults: { authMount: 'kubernetes', audience: 'cofre', filesDir: '/cofre/secrets' },
      agent: { image: 'cofre:test', imagePullPolicy: 'Never', cofreAddress: 'https://cofre:8200' },
      log: () => {},
      certReloadMs: 100,
    });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a body over 8 MiB with 413', async () => {
    assert.equal(await request(server.port, firstCa, 'POST', '/mutate', Buffer.alloc(9 * 1024 * 1024, 32)), 413);
    assert.equal(await request(server.port, firstCa, 'GET', '/healthz'), 200);
  });

  it('serves a renewed certificate without a restart', async () => {
    assert.equal(await request(server.port, firstCa, 'GET', '/healthz'), 200);
    await assert.rejects(request(server.port, secondCa, 'GET', '/healthz'));
    // The key first, then the certificate: in between, the pair does not match and the old one keeps serving.
    await execFileP('cp', ['second.key', 'serving.key'], { cwd: dir });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await request(server.port, firstCa, 'GET', '/healthz'), 200, 'a mismatched pair is not loaded');
    await execFileP('cp', ['second.crt', 'serving.crt'], { cwd: dir });
    const deadline = Date.now() + 5000;
    for (;;) {
      const status = await request(server.port, secondCa, 'GET', '/healthz').catch(() => 0);
      if (status === 200) break;
      assert.ok(Date.now() < deadline, 'the renewed certificate is served within 5 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    await assert.rejects(request(server.port, firstCa, 'GET', '/healthz'));
  });
});
