// The README as a newcomer follows it: a fresh clone in a temporary directory, the first of the "Two commands"
// exactly as written (install, then the dev server), and the tour's block exactly as written in a second shell.
// The README must link only to what a clone holds.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { tempDir } from './support.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');

/** The first ```sh block after a heading. */
function shellBlock(heading: string): string {
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README has no "${heading}" section`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, `no sh block under "${heading}"`);
  return block[1]!;
}

const portInUse = (port: number) =>
  new Promise<boolean>((done) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), done(true)));
    socket.once('error', () => done(false));
  });

describe('the README, followed on a fresh clone', () => {
  const dir = tempDir('readme');
  const clone = join(dir, 'cofre');
  let server: ChildProcess | undefined;
  let serverOut = '';
  after(() => {
    // The dev server runs under npm: end the whole group.
    if (server?.pid) {
      try {
        process.kill(-server.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('links only to files the repository holds', () => {
    const links = [...readme.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!);
    for (const link of links) {
      assert.doesNotMatch(link, /^[a-z]+:|^\/\/|^\.\./i, `README links outside the repository: ${link}`);
      assert.ok(existsSync(join(repo, link.split('#')[0]!)), `README links to a missing file: ${link}`);
    }
    assert.doesNotMatch(readme, /\.\.\/shared/, 'README names a path outside the clone');
  });

  it('the first command installs and starts a dev server; the tour runs as written', { timeout: 900_000 }, async () => {
    assert.equal(
      await portInUse(8200),
      false,
      'something already listens on 127.0.0.1:8200, where the README starts Cofre',
    );
    execFileSync('git', ['clone', '--quiet', repo, clone]);
    const first = shellBlock('## Two commands').trim();
    assert.match(first, /^npm ci && npm run dev/);
    server = spawn('bash', ['-c', first], { cwd: clone, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (d) => (serverOut += d));
    server.stderr!.on('data', (d) => (serverOut += d));
    const deadline = Date.now() + 840_000;
    while (!/Root Token: root/.test(serverOut)) {
      assert.equal(server.exitCode, null, `the first command ended: ${serverOut.slice(-3000)}`);
      assert.ok(Date.now() < deadline, `no dev server after 14 minutes: ${serverOut.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.match(serverOut, /Storage: +in memory/);
    // npm ci built the web UI too: the dev server sends a browser from / to it, and serves it.
    assert.match(serverOut, /Web UI: +http:\/\/127\.0\.0\.1:8200\/ui\//);
    const root = await fetch('http://127.0.0.1:8200/', { redirect: 'manual' });
    assert.equal(root.headers.get('location'), '/ui/');
    const ui = await fetch('http://127.0.0.1:8200/ui/');
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /<script type="module" crossorigin src="\/ui\/assets\/index-[\w-]+\.js">/);

    // The tour writes its audit log where the README says; a log left by an earlier tour is not ours to verify.
    rmSync('/tmp/cofre-audit.log', { force: true });
    const tour = join(dir, 'tour.sh');
    writeFileSync(tour, shellBlock('## A short tour'));
    // An interactive shell expands the tour's alias; a script needs expand_aliases for that.
    const out = execFileSync('bash', ['-O', 'expand_aliases', '-e', tour], {
      cwd: clone,
      encoding: 'utf8',
      env: { ...process.env, VAULT_ADDR: '', VAULT_TOKEN: '', COFRE_ADDR: '', COFRE_TOKEN: '' },
    });
    assert.match(out, /Sealed\s+false/, 'cofre status');
    assert.match(out, /"password": "s3cret"/, 'kv get -format=json');
    assert.match(out, /Success! Uploaded policy: app-read/, 'policy write');
    assert.match(out, /token\s+cvs\./, 'token create');
    assert.match(out, /token_policies\s+\["app-read" "default"\]/, 'token create');
    assert.match(out, /Success! Enabled the file audit device/, 'audit enable');
    assert.match(out, /OK: \d+ lines, hash chain intact/, 'audit verify');
    // The dev server logged the tour's requests (read once the tour, run synchronously, gives the loop back).
    const logged = /\[INFO\] +request: method=PUT path=\/v1\/sys\/policies\/acl\/app-read status=204/;
    for (let i = 0; i < 50 && !logged.test(serverOut); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(serverOut, logged);
  });
});
