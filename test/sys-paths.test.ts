import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

const SYSTEM_TTL = 768 * 3600;

/** Vault's wire shapes for sys/metrics, sys/mounts, sys/auth, key-status, tune reads, host-info and empty LISTs. */
describe('sys paths in Vault’s shapes', () => {
  let srv: InProcessServer;
  let defaultToken = '';
  const call = (method: string, path: string, token?: string) =>
    srv.api.call(method, path, token !== undefined ? { token } : {});

  before(async () => {
    srv = await startServer();
    const res = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } });
    defaultToken = res.body.auth.client_token;
  });
  after(() => srv?.stop());

  describe('sys/metrics', () => {
    it('answers JSON in go-metrics’ shape by default', async () => {
      await call('GET', 'sys/mounts'); // at least one request counted and timed
      const res = await fetch(`${srv.url}/v1/sys/metrics`, { headers: { 'x-vault-token': srv.rootToken } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['Counters', 'Gauges', 'Points', 'Samples', 'Timestamp']);
      assert.match(body.Timestamp as string, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
      assert.deepEqual(body.Points, []);
      const gauges = body.Gauges as { Name: string; Value: number; Labels: Record<string, string> }[];
      const heap = gauges.find((g) => g.Name === 'cofre_nodejs_heap_size_total_bytes');
      assert.ok(heap && heap.Value > 0 && typeof heap.Labels === 'object', JSON.stringify(heap));
      const sampledKeys = ['Count', 'Labels', 'Max', 'Mean', 'Min', 'Name', 'Rate', 'Stddev', 'Sum'];
      const counters = body.Counters as Record<string, unknown>[];
      const requests = counters.find(
        (c) => c.Name === 'cofre_http_requests_total' && (c.Labels as Record<string, string>).code === '200',
      );
      assert.ok(requests, JSON.stringify(counters.map((c) => c.Name)));
      assert.deepEqual(Object.keys(requests).sort(), sampledKeys);
      assert.ok((requests.Sum as number) >= 1);
      const samples = body.Samples as Record<string, unknown>[];
      const timing = samples.find((s) => s.Name === 'cofre_http_request_duration_seconds');
      assert.ok(timing, JSON.stringify(samples.map((s) => s.Name)));
      assert.deepEqual(Object.keys(timing).sort(), sampledKeys);
      assert.ok((timing.Count as number) >= 1);
      assert.equal(timing.Mean, (timing.Sum as number) / (timing.Count as number));
    });

    it('answers Prometheus text for format=prometheus, and refuses other formats as Vault', async () => {
      const res = await fetch(`${srv.url}/v1/sys/metrics?format=prometheus`, {
        headers: { 'x-vault-token': srv.rootToken },
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(await res.text(), /# TYPE cofre_http_requests_total counter/);
      const bad = await call('GET', 'sys/metrics?format=xml');
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body.errors, ['metric response format "xml" unknown']);
      assert.equal((await call('GET', 'sys/metrics', defaultToken)).status, 403);
    });

    it("times the store's commits: one observation per commit, each with its fsync", async () => {
      const scrape = async (): Promise<Record<string, number>> => {
        const res = await fetch(`${srv.url}/v1/sys/metrics?format=prometheus`, {
          headers: { 'x-vault-token': srv.rootToken },
        });
        const values: Record<string, number> = {};
        for (const line of (await res.text()).split('\n')) {
          const m = /^(cofre_storage_\w+?)(\{le="\+Inf"\})? (\S+)$/.exec(line);
          if (m) values[m[1]! + (m[2] ? '_inf' : '')] = Number(m[3]);
        }
        return values;
      };
      const before = await scrape();
      for (let i = 0; i < 5; i++) await writeOk(srv.api, `cubbyhole/commit-timing/${i}`, { n: i });
      const after = await scrape();
      const delta = (name: string) => after[name]! - before[name]!;
      assert.ok(delta('cofre_storage_commits_total') >= 5, JSON.stringify(after));
      assert.equal(delta('cofre_storage_commit_duration_seconds_count'), delta('cofre_storage_commits_total'));
      assert.equal(delta('cofre_storage_commit_duration_seconds_bucket_inf'), delta('cofre_storage_commits_total'));
      assert.ok(delta('cofre_storage_commit_duration_seconds_sum') > 0);
      assert.ok(delta('cofre_storage_writes_total') >= 5);
      assert.ok(after['cofre_storage_reads_total']! >= 0);
    });
  });

  describe('top-level copies and effective TTLs', () => {
    it('sys/mounts and sys/auth carry the mounts at the top level and under data', async () => {
      const mounts = await call('GET', 'sys/mounts');
      assert.equal(mounts.status, 200);
      assert.equal(mounts.body.data['secret/'].type, 'kv');
      assert.deepEqual(mounts.body['secret/'], mounts.body.data['secret/']);
      assert.deepEqual(mounts.body['sys/'], mounts.body.data['sys/']);
      assert.match(mounts.body.request_id, /^[0-9a-f-]{36}$/, 'the envelope is there too');
      const auth = await call('GET', 'sys/auth');
      assert.deepEqual(auth.body['token/'], auth.body.data['token/']);
      assert.equal(auth.body['token/'].type, 'token');
      const one = await call('GET', 'sys/mounts/secret');
      assert.equal(one.body.type, 'kv');
      assert.equal(one.body.data.type, 'kv');
    });

    it('sys/key-status has Vault’s legacy top-level fields', async () => {
      const res = await call('GET', 'sys/key-status');
      assert.equal(res.status, 200);
      assert.equal(res.body.term, 1);
      assert.equal(res.body.data.term, 1);
      assert.equal(res.body.install_time, res.body.data.install_time);
      assert.ok(!Number.isNaN(Date.parse(res.body.install_time)));
    });

    it('tune reads show the TTLs in effect: the system’s when the mount has none', async () => {
      await writeOk(srv.api, 'sys/mounts/tuned', { type: 'kv' });
      let tune = await call('GET', 'sys/mounts/tuned/tune');
      assert.equal(tune.status, 200, tune.text);
      assert.equal(tune.body.data.default_lease_ttl, SYSTEM_TTL);
      assert.equal(tune.body.data.max_lease_ttl, SYSTEM_TTL);
      assert.equal(tune.body.default_lease_ttl, SYSTEM_TTL, 'at the top level too');
      await writeOk(srv.api, 'sys/mounts/tuned/tune', { default_lease_ttl: '1h' });
      tune = await call('GET', 'sys/mounts/tuned/tune');
      assert.equal(tune.body.data.default_lease_ttl, 3600);
      assert.equal(tune.body.data.max_lease_ttl, SYSTEM_TTL);
      // The listing keeps Vault's 0 for "the system's".
      assert.equal((await call('GET', 'sys/mounts')).body.data['tuned/'].config.max_lease_ttl, 0);
      const token = await call('GET', 'sys/auth/token/tune');
      assert.equal(token.body.data.default_lease_ttl, SYSTEM_TTL);
      assert.equal(token.body.data.max_lease_ttl, SYSTEM_TTL);
    });

    it('sys/remount answers its migration_id at the top level too', async () => {
      await writeOk(srv.api, 'sys/mounts/top-a', { type: 'kv' });
      const res = await srv.api.call('POST', 'sys/remount', { body: { from: 'top-a', to: 'top-b' } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.migration_id, res.body.data.migration_id);
    });
  });

  describe('sys/host-info', () => {
    it('describes the host with node:os in gopsutil’s field names', async () => {
      const res = await call('GET', 'sys/host-info');
      assert.equal(res.status, 200, res.text);
      const data = res.body.data;
      assert.ok(!Number.isNaN(Date.parse(data.timestamp)));
      assert.equal(data.cpu.length, os.cpus().length);
      assert.equal(data.cpu[0].cpu, 0);
      assert.equal(data.cpu_times[0].cpu, 'cpu0');
      assert.equal(typeof data.cpu_times[0].idle, 'number');
      assert.equal(data.host.hostname, os.hostname());
      assert.equal(data.host.kernelVersion, os.release());
      assert.ok(data.host.uptime > 0 && data.host.bootTime > 1_000_000_000);
      assert.equal(data.memory.total, os.totalmem());
      assert.ok(data.memory.used > 0 && data.memory.used <= data.memory.total);
      assert.equal(data.disk[0].path, '/');
      assert.ok(data.disk[0].total > 0);
    });

    it('needs a policy that grants it', async () => {
      assert.equal((await call('GET', 'sys/host-info', defaultToken)).status, 403);
    });
  });

  describe('an empty LIST', () => {
    it('is 404 with no errors, on every path, as Vault answers it', async () => {
      await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
      await writeOk(srv.api, 'sys/auth/approle', { type: 'approle' });
      await writeOk(srv.api, 'sys/mounts/kv1', { type: 'kv' });
      for (const path of [
        'database/roles',
        'database/config',
        'database/static-roles',
        'auth/approle/role',
        'kv1/',
        'secret/metadata/',
        'sys/leases/lookup/nothing/',
      ]) {
        const res = await call('LIST', path);
        assert.equal(res.status, 404, `${path}: ${res.text}`);
        assert.deepEqual(res.body, { errors: [] }, path);
      }
    });

    it('sys/policies/acl always lists default and root', async () => {
      const res = await call('LIST', 'sys/policies/acl');
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.data.keys.includes('default') && res.body.data.keys.includes('root'), res.text);
    });

    it('a non-empty LIST still answers its keys', async () => {
      await writeOk(srv.api, 'kv1/a', { v: '1' });
      const res = await call('LIST', 'kv1/');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.data.keys, ['a']);
      assert.ok((await call('LIST', 'auth/token/accessors')).body.data.keys.length >= 1);
    });
  });
});
