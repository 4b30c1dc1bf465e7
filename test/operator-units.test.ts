// The operator's small parts without a cluster: the work queue's back-off, templates, durations, content hashing,
// and its API client's TLS set-up from a CofreConnection's caBundle.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createCofre } from '../src/app.js';
import { UnreachableError } from '../src/client/errors.js';
import { CofreAccess, type Identity } from '../src/kube/operator/cofre-client.js';
import { buildContent, contentHash } from '../src/kube/operator/content.js';
import { parseDuration } from '../src/kube/operator/duration.js';
import { WorkQueue } from '../src/kube/operator/queue.js';
import { render, TemplateError } from '../src/kube/operator/template.js';
import type { CofreSecret } from '../src/kube/operator/types.js';
import { selfSignedCert, tempDir } from './support.js';

describe('operator work queue', () => {
  it('retries a failing key with capped exponential back-off instead of hot-looping', async () => {
    const runs: number[] = [];
    const q = new WorkQueue(
      async () => {
        runs.push(Date.now());
        throw new Error('boom');
      },
      { baseDelayMs: 20, maxDelayMs: 80 },
    );
    q.add('ns/a');
    const deadline = Date.now() + 5_000;
    while (runs.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await q.stop();
    assert.ok(runs.length >= 6, `runs: ${runs.length}`);
    const gaps = runs.slice(1).map((t, i) => t - runs[i]!);
    // 20, 40, 80, 80, 80 ms (timers may fire a little late, never early).
    assert.ok(gaps[0]! >= 18 && gaps[1]! >= 38 && gaps[2]! >= 78 && gaps[4]! >= 78, `gaps ${gaps.join(',')}`);
    assert.ok(gaps[4]! < 400, `capped: ${gaps[4]}`);
  });

  it('never runs one key twice at once, and re-runs a key added while it ran', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      if (runs === 1) await gate;
      active--;
    });
    q.add('k');
    q.add('k');
    await new Promise((r) => setTimeout(r, 10));
    q.add('k');
    q.add('k');
    release();
    const deadline = Date.now() + 2_000;
    while (runs < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setImmediate(r));
    await q.stop();
    assert.equal(maxActive, 1);
    assert.equal(runs, 2);
  });
});

describe('operator templates and content', () => {
  const data = { user: 'app', 'odd-key': 'x y', b64: Buffer.from('hi').toString('base64') };
  it('renders .key, index, and the b64enc / b64dec / toJson functions', () => {
    assert.equal(render('u={{ .user }} o={{ index . "odd-key" }}', data), 'u=app o=x y');
    assert.equal(render('{{ .user | b64enc }}|{{ .b64 | b64dec }}|{{ .user | toJson }}', data), 'YXBw|hi|"app"');
    assert.throws(() => render('{{ .missing }}', data), TemplateError);
    assert.throws(() => render('{{ .user | upper }}', data), /unknown function "upper"/);
  });

  it('renders an imagePullSecret with {{ dockerconfigjson . }} from registry, username and password', () => {
    const cs = {
      metadata: { name: 'pull', namespace: 'n', uid: 'u1' },
      spec: {
        target: {
          name: 'regcred',
          type: 'kubernetes.io/dockerconfigjson',
          templates: { '.dockerconfigjson': '{{ dockerconfigjson . }}' },
        },
      },
    } as unknown as CofreSecret;
    const content = buildContent(cs, { registry: 'registry.example', username: 'bot', password: 'PULL-PW' });
    assert.equal(content.type, 'kubernetes.io/dockerconfigjson');
    assert.deepEqual(Object.keys(content.data), ['.dockerconfigjson']);
    assert.deepEqual(JSON.parse(content.data['.dockerconfigjson']!), {
      auths: {
        'registry.example': {
          username: 'bot',
          password: 'PULL-PW',
          auth: Buffer.from('bot:PULL-PW').toString('base64'),
        },
      },
    });
    assert.throws(
      () => buildContent(cs, { registry: 'registry.example', username: 'bot' }),
      (err: Error) => /template "\.dockerconfigjson": .*field "password"/.test(err.message),
    );
  });

  it('parses Go durations', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('5x'), undefined);
  });

  it('hashes content with a key: same content same hash, another key or value another hash, never the value', () => {
    const cs = { metadata: { name: 'a', namespace: 'n', uid: 'u1' }, spec: { target: { name: 't' } } } as CofreSecret;
    const c1 = buildContent(cs, { password: 'VALUE-1' });
    const h = contentHash(c1, 'u1');
    assert.equal(contentHash(buildContent(cs, { password: 'VALUE-1' }), 'u1'), h);
    assert.notEqual(contentHash(c1, 'u2'), h);
    assert.notEqual(contentHash(buildContent(cs, { password: 'VALUE-2' }), 'u1'), h);
    assert.equal(h.includes('VALUE'), false);
    assert.deepEqual(buildContent(cs, { n: 5, o: { a: 1 } }).data, { n: '5', o: '{"a":1}' });
  });
});

/** A kubeconfig that names no reachable cluster: for what the operator does without calling one. */
function offlineKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('operator connection to Cofre', () => {
  it('remembers a bounded number of clients however often connections change', () => {
    // Before, every edit of a connection (a new address or CA) added a client and a login that were never let go.
    const access = new CofreAccess(offlineKubeConfig(), { get: () => undefined });
    for (let i = 0; i < 10_000; i++) access.client({ address: `http://127.0.0.1:${i}` } as Identity);
    const clients = (access as unknown as { clients: { size: number } }).clients;
    assert.ok(clients.size <= 4096, `${clients.size} clients kept`);
  });

  it("verifies an https Cofre with the CofreConnection's caBundle, handed to the API client as bytes", async () => {
    const dir = tempDir('operator-ca');
    const { key, cert } = selfSignedCert(dir);
    const cofre = await createCofre({
      storage: { type: 'sqlite', path: join(dir, 'cofre.db') },
      logLevel: 'error',
      tls: { cert: readFileSync(cert), key: readFileSync(key) },
    });
    const access = new CofreAccess(offlineKubeConfig(), { get: () => undefined });
    try {
      await cofre.http.listen({ host: '127.0.0.1', port: 0 });
      const address = `https://127.0.0.1:${(cofre.http.server.address() as AddressInfo).port}`;
      const id = {
        key: 'k',
        connection: 'CofreConnection/ns/c',
        address,
        mountPath: 'kubernetes',
        role: 'r',
        audience: 'cofre',
        namespace: 'ns',
        serviceAccount: 'default',
        connectionRef: { kind: 'CofreConnection' as const, namespace: 'ns', name: 'c' },
        connectionGeneration: 1,
      };
      const withCa = access.client({ ...id, caPem: readFileSync(cert, 'utf8') });
      assert.equal((await withCa.read('sys/seal-status'))?.sealed, true);
      assert.equal(withCa.config.onSlow, undefined, 'the operator prints no terminal notices');
      await assert.rejects(access.client(id).read('sys/seal-status'), (err: unknown) => {
        assert.ok(err instanceof UnreachableError);
        assert.match(
          err.message,
          /^could not reach the server at https:\/\/127\.0\.0\.1:\d+: TLS failed: self[- ]signed/,
        );
        return true;
      });
    } finally {
      access.close();
      await cofre.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
