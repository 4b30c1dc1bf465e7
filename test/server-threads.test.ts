import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyLines, type ChainState } from '../src/core/audit-chain.js';
import { AgentKeys } from '../src/kube/cluster-agent/keys.js';
import { enrol, loginProof } from '../src/kube/cluster-agent/protocol.js';
import { freePort, spawnThreadedDevServer, tempDir } from './support.js';

/**
 * `cofre server --workers 2`: two server threads on one SQLite store and one port. Every request here goes on a new
 * TCP connection, which the kernel hands to either thread, so a check that holds for 40 requests in a row holds
 * on both threads (sys/leader's is_self tells them apart: only the first thread leads).
 */

interface Answer {
  status: number;
  body: Record<string, unknown> & { data?: Record<string, unknown> };
}

/** One request on a connection of its own (no keep-alive), so that it lands on whichever thread the kernel picks. */
function fresh(url: string, method: string, path: string, token?: string, body?: unknown): Promise<Answer> {
  return via(false, url, method, path, token, body);
}

/** One request through `agent` (a kept-alive connection stays on one thread), or on a new connection (false). */
function via(
  agent: http.Agent | false,
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer & { text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/${path}`,
      {
        method,
        agent,
        headers: { ...(token ? { 'x-vault-token': token } : {}), 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          const json = text !== '' && String(res.headers['content-type']).startsWith('application/json');
          resolve({ status: res.statusCode ?? 0, body: json ? JSON.parse(text) : {}, text });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A kept-alive connection that landed on the first thread (leading) or on another. */
async function connectionTo(url: string, first: boolean): Promise<http.Agent> {
  for (let i = 0; i < 100; i++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const leader = await via(agent, url, 'GET', 'sys/leader');
    if (leader.body.is_self === first) return agent;
    agent.destroy();
  }
  throw new Error(`no connection reached the ${first ? 'first' : 'second'} thread in 100 tries`);
}

/** `n` requests, each on a new connection, all at once. */
const many = (n: number, request: () => Promise<Answer>): Promise<Answer[]> =>
  Promise.all(Array.from({ length: n }, request));

const statuses = (answers: { status: number }[]): number[] => [...new Set(answers.map((a) => a.status))].sort();

/** How the spawned servers run: writes forwarded to the first thread (the default), or served where they arrive. */
function forwardingEnv(forwarding: boolean): void {
  if (forwarding) delete process.env.COFRE_FORWARD_WRITES;
  else process.env.COFRE_FORWARD_WRITES = 'off';
}

// Every check runs twice: with writes forwarded to the first thread (the default), and with each thread serving its
// own writes (COFRE_FORWARD_WRITES=off), where key locks, login nonces and ceremony forwarding cross threads.
for (const forwarding of [true, false]) {
  const mode = forwarding ? '' : ', each thread serving its own writes';

  describe(`server threads (--workers 2)${mode}`, () => {
    let dir: string;
    let server: Awaited<ReturnType<typeof spawnThreadedDevServer>>;
    let url: string;

    before(async () => {
      dir = tempDir('threads');
      server = await spawnThreadedDevServer(dir, forwarding);
      url = server.url;
    });
    after(() => {
      server?.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('both threads answer on the one port, and only the first leads', async () => {
      const answers = await many(40, () => fresh(url, 'GET', 'sys/leader'));
      const selves = new Set(answers.map((a) => a.body.is_self));
      assert.deepEqual([...selves].sort(), [false, true], 'both threads took connections');
      const ha = await fresh(url, 'GET', 'sys/ha-status', 'root');
      const nodes = (ha.body.data as { nodes: { hostname: string; active_node: boolean }[] }).nodes;
      assert.deepEqual(
        nodes.map((n) => [n.hostname, n.active_node]),
        [
          ['thread-0', true],
          ['thread-1', false],
        ],
      );
    });

    it('sys/step-down leaves the first thread leading: no other thread could take the jobs over', async () => {
      assert.equal((await fresh(url, 'POST', 'sys/step-down', 'root')).status, 204);
      const selves = new Set((await many(40, () => fresh(url, 'GET', 'sys/leader'))).map((a) => a.body.is_self));
      assert.deepEqual([...selves].sort(), [false, true], 'the first thread still leads');
    });

    it(`the second thread ${forwarding ? 'hands its writes to the first' : 'serves its writes'} and serves its reads itself, with the same answers`, async () => {
      const second = await connectionTo(url, false);
      const first = await connectionTo(url, true);
      const forwarded = async (agent: http.Agent): Promise<number | undefined> => {
        const metrics = await via(agent, url, 'GET', 'sys/metrics?format=prometheus', 'root');
        const line = /^cofre_forwarded_writes_total (\d+)$/m.exec(metrics.text);
        return line ? Number(line[1]) : undefined;
      };
      try {
        const before = (await forwarded(second)) ?? 0;
        for (let i = 0; i < 5; i++) {
          const put = await via(second, url, 'PUT', `secret/data/forwarded/${i}`, 'root', { data: { v: String(i) } });
          assert.equal(put.status, 200);
          assert.equal((put.body.data as { version: number }).version, 1);
        }
        for (let i = 0; i < 3; i++)
          assert.equal((await via(second, url, 'GET', 'secret/data/forwarded/0', 'root')).status, 200);
        const hashed = await via(second, url, 'POST', 'sys/tools/hash', 'root', { input: 'eA==' });
        assert.equal(hashed.status, 200);
        // A login (served without a token) is served where it arrives: its password check is the heaviest work.
        await via(second, url, 'POST', 'sys/auth/forwarded-up', 'root', { type: 'userpass' });
        await via(second, url, 'POST', 'auth/forwarded-up/users/u', 'root', {
          password: 'pw',
          token_policies: 'default',
        });
        const login = await via(second, url, 'POST', 'auth/forwarded-up/login/u', undefined, { password: 'pw' });
        assert.equal(login.status, 200);
        const sent = forwarding ? 7 : 0; // five secrets, the mount and the user
        assert.equal((await forwarded(second)) ?? 0, before + sent, 'only the writes went to the first thread');
        assert.equal(await forwarded(first), undefined, 'the first thread forwards nothing');
        // Its answer is read on the first thread from the moment it is given.
        const read = await via(first, url, 'GET', 'secret/data/forwarded/4', 'root');
        assert.deepEqual((read.body.data as { data: unknown }).data, { v: '4' });

        // A refusal keeps its status and words; a wrapped answer crosses whole and unwraps on the other thread.
        const refused = await via(second, url, 'PUT', 'secret/data/forwarded/x', 'not-a-token', { data: {} });
        assert.equal(refused.status, 403);
        assert.deepEqual(refused.body.errors, ['permission denied: invalid or expired token']);
        const wrapped = await via(
          second,
          url,
          'POST',
          'auth/token/create',
          'root',
          { ttl: '1h' },
          { 'x-vault-wrap-ttl': '60' },
        );
        assert.equal(wrapped.status, 200);
        const wrapToken = (wrapped.body.wrap_info as { token: string }).token;
        const unwrapped = await via(first, url, 'POST', 'sys/wrapping/unwrap', wrapToken);
        assert.equal(unwrapped.status, 200);
        assert.equal(typeof (unwrapped.body.auth as { client_token: string }).client_token, 'string');
      } finally {
        second.destroy();
        first.destroy();
      }
    });

    it('a token revoked through one thread is refused by every thread once the revocation is answered', async () => {
      await fresh(url, 'POST', 'secret/data/threads/a', 'root', { data: { v: '1' } });
      for (let round = 0; round < 5; round++) {
        const made = await fresh(url, 'POST', 'auth/token/create', 'root', { policies: ['root'], ttl: '1h' });
        const token = (made.body.auth as { client_token: string }).client_token;
        // Both threads have the token cached before the revocation.
        assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'secret/data/threads/a', token))), [200]);
        // Readers race the revocation; a read sent after its answer must be refused, on either thread.
        let revokedAt = Infinity;
        const late: Promise<Answer>[] = [];
        let racing = true;
        const racers = Array.from({ length: 8 }, async () => {
          while (racing) {
            const sentAfterRevoke = Date.now() > revokedAt;
            const answer = fresh(url, 'GET', 'secret/data/threads/a', token);
            if (sentAfterRevoke) late.push(answer);
            await answer;
          }
        });
        await new Promise((r) => setTimeout(r, 30));
        const revoked = await fresh(url, 'POST', 'auth/token/revoke', 'root', { token });
        assert.equal(revoked.status, 204);
        revokedAt = Date.now();
        await new Promise((r) => setTimeout(r, 100));
        racing = false;
        await Promise.all(racers);
        const lateAnswers = await Promise.all(late);
        assert.ok(lateAnswers.length > 0);
        assert.deepEqual(statuses(lateAnswers), [403], `round ${round}: a revoked token was served after the answer`);
        assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'secret/data/threads/a', token))), [403]);
      }
    });

    it('a policy change through one thread holds on every thread from its answer on', async () => {
      await fresh(url, 'POST', 'secret/data/threads/p', 'root', { data: { v: '1' } });
      const allow = 'path "secret/data/threads/p" { capabilities = ["read"] }';
      const deny = 'path "secret/data/threads/other" { capabilities = ["read"] }';
      assert.equal((await fresh(url, 'PUT', 'sys/policies/acl/reader', 'root', { policy: allow })).status, 204);
      const made = await fresh(url, 'POST', 'auth/token/create', 'root', { policies: ['reader'], ttl: '1h' });
      const token = (made.body.auth as { client_token: string }).client_token;
      for (let round = 0; round < 3; round++) {
        assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'secret/data/threads/p', token))), [200]);
        assert.equal((await fresh(url, 'PUT', 'sys/policies/acl/reader', 'root', { policy: deny })).status, 204);
        assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'secret/data/threads/p', token))), [403]);
        assert.equal((await fresh(url, 'PUT', 'sys/policies/acl/reader', 'root', { policy: allow })).status, 204);
      }
    });

    it('a limited-use token gives exactly its uses, whichever threads its requests reach', async () => {
      await fresh(url, 'POST', 'secret/data/threads/u', 'root', { data: { v: '1' } });
      const made = await fresh(url, 'POST', 'auth/token/create', 'root', { policies: ['root'], num_uses: 5 });
      const token = (made.body.auth as { client_token: string }).client_token;
      const answers = await many(40, () => fresh(url, 'GET', 'secret/data/threads/u', token));
      assert.equal(answers.filter((a) => a.status === 200).length, 5);
      assert.equal(answers.filter((a) => a.status === 403).length, 35);
    });

    it('check-and-set lets exactly one of many writers on both threads through', async () => {
      await fresh(url, 'POST', 'secret/data/threads/cas', 'root', { data: { v: '0' } });
      const answers = await many(30, () =>
        fresh(url, 'POST', 'secret/data/threads/cas', 'root', { options: { cas: 1 }, data: { v: 'mine' } }),
      );
      assert.equal(answers.filter((a) => a.status === 200).length, 1);
      assert.equal(answers.filter((a) => a.status === 400).length, 29);
      const read = await fresh(url, 'GET', 'secret/metadata/threads/cas', 'root');
      assert.equal((read.body.data as { current_version: number }).current_version, 2);
    });

    it("a cluster agent's login proof is accepted once, whichever threads its replays reach", async () => {
      // Each thread remembers the nonces it accepted; without the nonce recorded in the store, a replay that reached
      // the other thread within the proof's 60 s window got a token of the cluster.
      const registered = await fresh(url, 'PUT', 'sys/cofre/clusters/threads-agent', 'root', { labels: {} });
      assert.equal(registered.status, 200, JSON.stringify(registered.body));
      const keys = await AgentKeys.generate();
      const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
      const bootstrap = (registered.body.data as { bootstrap_token: string }).bootstrap_token;
      const { cluster_id } = await enrol({ address: url }, bootstrap, pub, 'test/threads');
      for (let round = 0; round < 3; round++) {
        const proof = loginProof(cluster_id, keys);
        const answers = await many(24, () => fresh(url, 'PUT', 'sys/cofre/agent/login', undefined, proof));
        assert.deepEqual(statuses(answers), [200, 403], `round ${round}`);
        assert.equal(answers.filter((a) => a.status === 200).length, 1, `round ${round}: one login per proof`);
      }
    });

    it('disabling an auth method through one thread leaves no live token from logins the other thread served', async () => {
      // The thread that disables revokes the method's tokens before it unmounts, and the other thread hears of the
      // unmount only after that: before the durable closing mark, the tokens it issued meanwhile (a third of all,
      // measured) outlived their method with nothing left to revoke them.
      let issued = 0;
      let refused = 0;
      for (let round = 0; round < 4; round++) {
        const mount = `threads-gone-${round}`;
        assert.equal((await fresh(url, 'POST', `sys/auth/${mount}`, 'root', { type: 'approle' })).status, 204);
        const role = { token_ttl: '1h', token_policies: 'default' };
        assert.equal((await fresh(url, 'POST', `auth/${mount}/role/r`, 'root', role)).status, 204);
        const roleId = (await fresh(url, 'GET', `auth/${mount}/role/r/role-id`, 'root')).body.data!.role_id;
        const secretId = (await fresh(url, 'POST', `auth/${mount}/role/r/secret-id`, 'root')).body.data!.secret_id;
        const tokens: string[] = [];
        let racing = true;
        const logins = Array.from({ length: 8 }, async () => {
          while (racing) {
            const login = await fresh(url, 'POST', `auth/${mount}/login`, undefined, {
              role_id: roleId,
              secret_id: secretId,
            });
            if (login.status === 200) tokens.push((login.body.auth as { client_token: string }).client_token);
            else {
              // Refused because the method is going or gone: a clear 4xx, never a 500.
              assert.ok(login.status >= 400 && login.status < 500, `${login.status} ${JSON.stringify(login.body)}`);
              refused++;
            }
          }
        });
        await new Promise((r) => setTimeout(r, 40));
        const disabled = await fresh(url, 'DELETE', `sys/auth/${mount}`, 'root');
        await new Promise((r) => setTimeout(r, 50));
        racing = false;
        await Promise.all(logins);
        assert.equal(disabled.status, 204, JSON.stringify(disabled.body));
        issued += tokens.length;
        const live = [];
        for (const token of tokens) {
          if ((await fresh(url, 'GET', 'auth/token/lookup-self', token)).status !== 403) live.push(token);
        }
        assert.equal(live.length, 0, `round ${round}: ${live.length} of ${tokens.length} tokens outlived ${mount}`);
        const leases = await fresh(url, 'LIST', `sys/leases/lookup/auth/${mount}/login/`, 'root');
        assert.equal(leases.status, 404, JSON.stringify(leases.body));
      }
      assert.ok(issued > 0, 'some logins got through before the disable');
      assert.ok(refused > 0, 'some logins ran after it');
    });

    it('audit devices enabled and disabled through the first thread: the second records every request it starts after the answer, and refuses none', async () => {
      // Devices changed on one thread are loaded by the other after it hears of the change. Before, that thread
      // emptied its devices while it loaded them: requests meanwhile got 500 (devices in the table, none open), and
      // those served while the first device was opening went unaudited although its enabling had been answered.
      const first = await connectionTo(url, true);
      const seconds = await Promise.all(Array.from({ length: 12 }, () => connectionTo(url, false)));
      const files = { a: join(dir, 'race-a.log'), b: join(dir, 'race-b.log') };
      const changes: [string, string, unknown?][] = [
        ['PUT', 'sys/audit/race-a', { type: 'file', options: { file_path: files.a } }],
        ['PUT', 'sys/audit/race-b', { type: 'file', options: { file_path: files.b } }],
        ['DELETE', 'sys/audit/race-a'],
        ['DELETE', 'sys/audit/race-b'],
      ];
      // sent: changes sent so far; answered: changes answered so far.
      let sent = 0;
      let answered = 0;
      let n = 0;
      let racing = true;
      const reads: { path: string; status: number; after: number; before: number }[] = [];
      const readers = seconds.map(async (agent) => {
        while (racing) {
          const path = `secret/data/audit-race/${n++}`;
          const after = answered;
          const { status } = await via(agent, url, 'GET', path, 'root');
          reads.push({ path, status, after, before: sent });
        }
      });
      const readsFor = async (count: number) => {
        for (const until = n + count; n < until;) await new Promise((r) => setTimeout(r, 2));
      };
      await readsFor(30);
      for (const [method, path, body] of changes) {
        sent++;
        const answer = await via(first, url, method, path, 'root', body);
        assert.equal(answer.status, 204, answer.text);
        answered++;
        await readsFor(30);
      }
      racing = false;
      await Promise.all(readers);
      for (const agent of [first, ...seconds]) agent.destroy();
      assert.deepEqual(statuses(reads), [404], 'no read was refused while the devices changed');
      const recorded = (file: string) => {
        const entries = readFileSync(file, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as { type: string; request: { path: string } });
        return (type: string) => new Set(entries.filter((e) => e.type === type).map((e) => e.request.path));
      };
      // A device records every read started after its enabling was answered and answered before its disabling was
      // sent: the request and its response.
      for (const [file, enabledBy, disabledBy] of [
        [files.a, 1, 3],
        [files.b, 2, 4],
      ] as const) {
        const entries = recorded(file);
        const due = reads.filter((r) => r.after >= enabledBy && r.before < disabledBy).map((r) => r.path);
        assert.ok(due.length >= 30, `${due.length} reads due in ${file}`);
        for (const type of ['request', 'response']) {
          const missing = due.filter((path) => !entries(type).has(path));
          assert.deepEqual(missing, [], `${file}: ${missing.length} of ${due.length} reads have no ${type} entry`);
        }
      }
    });

    it('one file audit device, one hash chain, entries from both threads', async () => {
      const file = join(dir, 'audit.log');
      await fresh(url, 'POST', 'secret/data/threads/a', 'root', { data: { v: '1' } });
      const enabled = await fresh(url, 'PUT', 'sys/audit/file', 'root', { type: 'file', options: { file_path: file } });
      assert.equal(enabled.status, 204);
      // 60 requests on new connections, on both threads at once: 120 entries (request and response) in one chain.
      assert.deepEqual(statuses(await many(60, () => fresh(url, 'GET', 'secret/data/threads/a', 'root'))), [200]);
      const lines = readFileSync(file, 'utf8').split('\n');
      const result = verifyLines(lines, {});
      assert.ok(result.ok, `the chain breaks: ${JSON.stringify(result)}`);
      assert.ok(result.lines >= 2 * 60 + 1, `${result.lines} lines`); // and the device's test entry
      // Read back through either thread: the primary's device, between two whole writes.
      const readBack = await many(10, () => fresh(url, 'GET', 'sys/cofre/audit-log/file?limit=5', 'root'));
      assert.deepEqual(statuses(readBack), [200]);
      for (const answer of readBack) assert.equal((answer.body.data as { entries: unknown[] }).entries.length, 5);
      assert.equal((await fresh(url, 'DELETE', 'sys/audit/file', 'root')).status, 204);
    });

    it('one socket audit device: both threads relay their entries to it, in one chain, a turn at a time', async () => {
      let received = '';
      const collector = net.createServer((s) => s.on('data', (d: Buffer) => (received += d.toString())));
      await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
      const address = `127.0.0.1:${(collector.address() as net.AddressInfo).port}`;
      try {
        await fresh(url, 'POST', 'secret/data/threads/s', 'root', { data: { v: '1' } });
        const enabled = await fresh(url, 'PUT', 'sys/audit/sock', 'root', { type: 'socket', options: { address } });
        assert.equal(enabled.status, 204);
        // Every request is answered only once its entries were handed to the socket; the collector reads them soon after.
        assert.deepEqual(statuses(await many(60, () => fresh(url, 'GET', 'secret/data/threads/s', 'root'))), [200]);
        for (let i = 0; i < 100 && received.split('\n').length < 2 * 60 + 2; i++)
          await new Promise((r) => setTimeout(r, 50));
        const lines = received.split('\n');
        const result = verifyLines(lines, {});
        assert.ok(result.ok, `the chain breaks: ${JSON.stringify(result)}`);
        assert.ok(result.lines >= 2 * 60 + 1, `${result.lines} lines`);
        assert.equal((await fresh(url, 'DELETE', 'sys/audit/sock', 'root')).status, 204);
      } finally {
        collector.close();
      }
    });

    it('a rotated audit file (renamed away, or SIGHUP) is left by both threads at once: the files make one chain', async () => {
      const file = join(dir, 'rotated.log');
      const enabled = await fresh(url, 'PUT', 'sys/audit/rot', 'root', {
        type: 'file',
        options: { file_path: file },
      });
      assert.equal(enabled.status, 204);
      const load = async (path: string) =>
        assert.deepEqual(statuses(await many(40, () => fresh(url, 'GET', `secret/data/${path}`, 'root'))), [404]);
      await load('before-rename');
      // Renamed away: whichever thread looks up the path first (once a second) has both threads open the new file.
      renameSync(file, `${file}.1`);
      await new Promise((r) => setTimeout(r, 1100));
      await load('after-rename');
      await load('after-rename-again');
      renameSync(file, `${file}.2`);
      server.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 200));
      await load('after-hup');
      const files = [`${file}.1`, `${file}.2`, file].map((f) => readFileSync(f, 'utf8').split('\n'));
      let after: ChainState | undefined;
      for (const [i, lines] of files.entries()) {
        const result = verifyLines(lines, after ? { after } : {});
        assert.ok(result.ok, `file ${i + 1} does not continue the chain: ${JSON.stringify(result)}`);
        after = result.last;
      }
      const text = files.map((lines) => lines.join('\n'));
      assert.ok(text[0]!.includes('before-rename') && !text[0]!.includes('after-rename'));
      assert.ok(text[1]!.includes('after-rename-again') && !text[1]!.includes('after-hup'));
      assert.ok(text[2]!.includes('after-hup') && !text[2]!.includes('after-rename'));
      assert.equal((await fresh(url, 'DELETE', 'sys/audit/rot', 'root')).status, 204);
    });

    it('sys/seal through one thread seals every thread; an unseal key through one unseals every thread', async () => {
      const unsealKey = readFileSync(join(dir, 'dev-unseal-key'), 'utf8').trim();
      assert.equal((await fresh(url, 'PUT', 'sys/seal', 'root')).status, 204);
      assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'secret/data/threads/a', 'root'))), [503]);
      const sealedStatus = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(sealedStatus.map((a) => a.body.sealed))], [true]);
      const unsealed = await fresh(url, 'PUT', 'sys/unseal', undefined, { key: unsealKey });
      assert.equal(unsealed.body.sealed, false);
      assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'secret/data/threads/a', 'root'))), [200]);
    });
  });

  describe(`server threads from a configuration file (workers = 2, Shamir seal, 3 shares, threshold 2)${mode}`, () => {
    let dir: string;
    let child: ChildProcess;
    let out = '';
    let url: string;
    let keys: string[];
    let token: string;

    before(async () => {
      dir = tempDir('threads-config');
      const port = await freePort();
      const config = join(dir, 'cofre.hcl');
      writeFileSync(
        config,
        `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\nworkers = 2\n`,
      );
      forwardingEnv(forwarding);
      child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', '--config', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      forwardingEnv(true);
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      url = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 400 && !out.includes('Server threads: 2'); i++) await new Promise((r) => setTimeout(r, 50));
    });

    after(async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      assert.equal(child.exitCode, 0, `a clean stop on SIGTERM: ${out}`);
    });

    it('starts sealed; two key shares given on different connections unseal every thread', async () => {
      assert.match(out, /not initialized/);
      const init = await fresh(url, 'PUT', 'sys/init', undefined, { secret_shares: 3, secret_threshold: 2 });
      assert.equal(init.status, 200);
      keys = init.body.keys as string[];
      token = init.body.root_token as string;
      assert.deepEqual(
        [...new Set((await many(20, () => fresh(url, 'GET', 'sys/seal-status'))).map((a) => a.body.t))],
        [2],
      );

      // The first share reaches one thread; every thread counts it.
      const first = await fresh(url, 'PUT', 'sys/unseal', undefined, { key: keys[0] });
      assert.equal(first.body.progress, 1);
      const progress = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(progress.map((a) => a.body.progress))], [1], 'every thread has the first share');
      // A reset through any thread resets them all; then two shares, each on a connection of its own.
      await fresh(url, 'PUT', 'sys/unseal', undefined, { reset: true });
      const reset = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(reset.map((a) => a.body.progress))], [0]);
      await fresh(url, 'PUT', 'sys/unseal', undefined, { key: keys[1] });
      const done = await fresh(url, 'PUT', 'sys/unseal', undefined, { key: keys[2] });
      assert.equal(done.body.sealed, false);
      const after = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(after.map((a) => a.body.sealed))], [false], 'every thread is unsealed');
      const mounted = await fresh(url, 'POST', 'sys/mounts/kv', token, { type: 'kv', options: { version: '2' } });
      assert.equal(mounted.status, 204);
      await fresh(url, 'POST', 'kv/data/x', token, { data: { v: '1' } });
      assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'kv/data/x', token))), [200]);
    });

    it('generate-root: one attempt whichever threads its calls reach; its errors keep their status', async () => {
      const attempt = () => many(20, () => fresh(url, 'GET', 'sys/generate-root/attempt'));
      const started = await fresh(url, 'PUT', 'sys/generate-root/attempt', undefined, {});
      assert.equal(started.status, 200);
      const { nonce, otp } = started.body as { nonce: string; otp: string };
      assert.deepEqual(
        [...new Set((await attempt()).map((a) => `${a.body.nonce} ${a.body.progress}`))],
        [`${nonce} 0`],
      );
      // Refused by whichever thread holds it, and answered so on both: 400, the holder's message.
      const again = await many(10, () => fresh(url, 'PUT', 'sys/generate-root/attempt', undefined, {}));
      assert.deepEqual(statuses(again), [400]);
      assert.deepEqual([...new Set(again.map((a) => String(a.body.errors)))], ['root generation already in progress']);
      const wrong = await many(10, () =>
        fresh(url, 'PUT', 'sys/generate-root/update', undefined, { key: keys[0], nonce: 'not-the-nonce' }),
      );
      assert.deepEqual(statuses(wrong), [400]);

      const one = await fresh(url, 'PUT', 'sys/generate-root/update', undefined, { key: keys[0], nonce });
      assert.equal(one.body.progress, 1);
      assert.deepEqual([...new Set((await attempt()).map((a) => a.body.progress))], [1], 'every thread sees the share');
      const two = await fresh(url, 'PUT', 'sys/generate-root/update', undefined, { key: keys[2], nonce });
      assert.equal(two.body.complete, true);
      const bytes = Buffer.from(two.body.encoded_token as string, 'base64');
      const root = Buffer.from(bytes.map((b, i) => b ^ otp.charCodeAt(i))).toString('utf8');
      assert.deepEqual(statuses(await many(20, () => fresh(url, 'GET', 'auth/token/lookup-self', root))), [200]);
      assert.deepEqual([...new Set((await attempt()).map((a) => a.body.started))], [false], 'the attempt is over');

      // The last two shares racing on two connections mint one token, not two.
      const race = (await fresh(url, 'PUT', 'sys/generate-root/attempt', undefined, {})).body.nonce as string;
      await fresh(url, 'PUT', 'sys/generate-root/update', undefined, { key: keys[0], nonce: race });
      const last = await Promise.all(
        [keys[1], keys[2]].map((key) => fresh(url, 'PUT', 'sys/generate-root/update', undefined, { key, nonce: race })),
      );
      assert.deepEqual(last.map((a) => a.body.complete === true).sort(), [false, true]);
      assert.deepEqual(last.map((a) => a.status).sort(), [200, 400]);

      // A cancel through either thread ends the attempt for both.
      await fresh(url, 'PUT', 'sys/generate-root/attempt', undefined, {});
      assert.equal((await fresh(url, 'DELETE', 'sys/generate-root/attempt')).status, 204);
      assert.deepEqual([...new Set((await attempt()).map((a) => a.body.started))], [false]);
    });

    it('rekey: the old shares given on different connections make new ones, which unseal every thread', async () => {
      const init = await fresh(url, 'PUT', 'sys/rekey/init', undefined, { secret_shares: 3, secret_threshold: 2 });
      assert.equal(init.status, 200);
      const nonce = init.body.nonce as string;
      const status = await many(20, () => fresh(url, 'GET', 'sys/rekey/init'));
      assert.deepEqual([...new Set(status.map((a) => `${a.body.nonce} ${a.body.started}`))], [`${nonce} true`]);
      assert.equal((await fresh(url, 'PUT', 'sys/rekey/update', undefined, { key: keys[1], nonce })).body.progress, 1);
      const done = await fresh(url, 'PUT', 'sys/rekey/update', undefined, { key: keys[0], nonce });
      assert.equal(done.body.complete, true);
      const rekeyed = done.body.keys as string[];
      assert.equal(rekeyed.length, 3);

      assert.equal((await fresh(url, 'PUT', 'sys/seal', token)).status, 204);
      // Two old shares, on connections of their own: a wrong set (400) on every thread.
      await fresh(url, 'PUT', 'sys/unseal', undefined, { key: keys[0] });
      assert.equal((await fresh(url, 'PUT', 'sys/unseal', undefined, { key: keys[1] })).status, 400);
      const still = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(still.map((a) => a.body.sealed))], [true], 'the old shares no longer unseal');
      await fresh(url, 'PUT', 'sys/unseal', undefined, { key: rekeyed[2] });
      assert.equal((await fresh(url, 'PUT', 'sys/unseal', undefined, { key: rekeyed[0] })).body.sealed, false);
      const after = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(after.map((a) => a.body.sealed))], [false], 'every thread is unsealed');
      keys = rekeyed;
    });

    it('rekey with verification: the new shares, verified on different connections, take effect on every thread', async () => {
      const init = await fresh(url, 'PUT', 'sys/rekey/init', undefined, {
        secret_shares: 4,
        secret_threshold: 2,
        require_verification: true,
      });
      assert.equal(init.status, 200, JSON.stringify(init.body));
      const nonce = init.body.nonce as string;
      await fresh(url, 'PUT', 'sys/rekey/update', undefined, { key: keys[2], nonce });
      const done = await fresh(url, 'PUT', 'sys/rekey/update', undefined, { key: keys[0], nonce });
      assert.equal(done.body.complete, true, JSON.stringify(done.body));
      const vnonce = done.body.verification_nonce as string;
      const rekeyed = done.body.keys as string[];
      const pending = await many(20, () => fresh(url, 'GET', 'sys/rekey/verify'));
      assert.deepEqual([...new Set(pending.map((a) => a.body.nonce))], [vnonce], 'every thread sees the verification');
      const before = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(before.map((a) => a.body.n))], [3], 'nothing changes before the verification');
      const one = await fresh(url, 'PUT', 'sys/rekey/verify', undefined, { key: rekeyed[3], nonce: vnonce });
      assert.equal(one.body.progress, 1, JSON.stringify(one.body));
      const verified = await fresh(url, 'PUT', 'sys/rekey/verify', undefined, { key: rekeyed[1], nonce: vnonce });
      assert.deepEqual(verified.body, { nonce: vnonce, complete: true });
      const after = await many(20, () => fresh(url, 'GET', 'sys/seal-status'));
      assert.deepEqual([...new Set(after.map((a) => a.body.n))], [4], 'every thread has the new configuration');
      keys = rekeyed;
    });
  });
}

describe('server threads and a taken port', () => {
  it('refuse to start on a port another server listens on, instead of sharing it through SO_REUSEPORT', async () => {
    const dir = tempDir('threads-port');
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen({ host: '127.0.0.1', port: 0, reusePort: true }, resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const args = ['--import', 'tsx', 'src/cli/main.ts', 'server', '--dev', '--data-dir', dir];
      args.push('--dev-listen-address', `127.0.0.1:${port}`, '--workers', '2');
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise((resolve) => child.once('exit', resolve));
      assert.equal(code, 1);
      assert.match(err, new RegExp(`127.0.0.1:${port} is already in use`));
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
