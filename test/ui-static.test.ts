/**
 * The web UI's static files at /ui/ (src/http/ui.ts), served from a build directory made here with files of the
 * shape Vite writes: the UI's pages get index.html, files get their type and the security headers, nothing outside
 * the directory is reachable, and the API answers as before. The browser tests (ui.test.ts) use the real build.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureUiBuilt } from './browser.js';
import { freePort, startServer, tempDir, type InProcessServer } from './support.js';

const INDEX =
  '<!doctype html><html><head><script type="module" src="/ui/assets/index-abc123.js"></script></head></html>';
const SCRIPT = 'console.log("cofre ui")';

describe('the web UI served at /ui/', () => {
  let srv: InProcessServer;
  let root: string;
  let buildDir: string;
  before(async () => {
    root = tempDir('ui-build');
    buildDir = join(root, 'dist');
    mkdirSync(join(buildDir, 'assets'), { recursive: true });
    writeFileSync(join(buildDir, 'index.html'), INDEX);
    writeFileSync(join(buildDir, 'assets', 'index-abc123.js'), SCRIPT);
    writeFileSync(join(buildDir, 'assets', 'index-abc123.js.map'), '{"sources":["secret source"]}');
    // A file beside the build directory, which no URL may reach.
    writeFileSync(join(root, 'outside-ui.txt'), 'not for the web');
    srv = await startServer({ ui: { dir: buildDir } });
  });
  after(async () => {
    await srv.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const get = (path: string, init: RequestInit = {}) => fetch(`${srv.url}${path}`, { redirect: 'manual', ...init });

  it('serves index.html for /ui/ and for any page of the UI, with its security headers', async () => {
    for (const path of ['/ui/', '/ui/secrets', '/ui/secrets/secret/app/config', '/ui/policies/default']) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8', path);
      assert.equal(await res.text(), INDEX, path);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/, path);
      assert.match(csp, /script-src 'self';/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(res.headers.get('cache-control'), 'no-store', path);
    }
  });

  it('serves the built files with their types, and not source maps', async () => {
    const js = await get('/ui/assets/index-abc123.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(await js.text(), SCRIPT);
    assert.equal((await get('/ui/assets/index-abc123.js.map')).status, 404);
    assert.equal((await get('/ui/assets/missing.js')).status, 404);
  });

  it('reaches nothing outside the build directory, however the path is spelled', async () => {
    for (const path of [
      '/ui/../outside-ui.txt',
      '/ui/%2e%2e/outside-ui.txt',
      '/ui/..%2foutside-ui.txt',
      '/ui/assets/..%2f..%2foutside-ui.txt',
      '/ui/%2e%2e%2f%2e%2e%2fpackage.json',
      '/ui//etc/passwd',
    ]) {
      const res = await get(path);
      const text = await res.text();
      assert.ok(!text.includes('not for the web') && !text.includes('root:'), path);
      assert.ok(res.status === 404 || text === INDEX, `${path}: ${res.status}`);
    }
  });

  it('redirects /ui and (as dev mode does) / to /ui/', async () => {
    for (const path of ['/ui', '/']) {
      const res = await get(path);
      assert.ok(res.status === 307 || res.status === 308, path);
      assert.equal(res.headers.get('location'), '/ui/', path);
    }
  });

  it('leaves the API as it was: JSON answers without the UI headers, other paths still 404, other methods 405', async () => {
    const health = await get('/v1/sys/health');
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('content-security-policy'), null);
    assert.equal(health.headers.get('content-type'), 'application/json');
    const other = await get('/elsewhere');
    assert.equal(other.status, 404);
    assert.deepEqual(((await other.json()) as { errors: string[] }).errors, [
      'no handler for GET /elsewhere; the API is under /v1/',
    ]);
    for (const method of ['PUT', 'DELETE']) assert.equal((await get('/ui/', { method })).status, 404, method);
    assert.equal((await get('/ui/', { method: 'OPTIONS' })).status, 405);
  });
});

describe('a server asked for the UI when none is built', () => {
  let srv: InProcessServer;
  let empty: string;
  before(async () => {
    empty = tempDir('ui-empty');
    srv = await startServer({ ui: { dir: empty } });
  });
  after(async () => {
    await srv.stop();
    rmSync(empty, { recursive: true, force: true });
  });

  it('says how to build it and where the API is', async () => {
    for (const path of ['/', '/ui/', '/ui/secrets']) {
      const res = await fetch(`${srv.url}${path}`, { redirect: 'manual' });
      assert.equal(res.status, 404, path);
      assert.deepEqual(((await res.json()) as { errors: string[] }).errors, [
        'the web UI is not built (npm run build builds it into web/dist); the API is under /v1/ (try GET /v1/sys/health)',
      ]);
    }
  });
});

describe('a configured server (not dev mode) with ui = true', () => {
  it('serves the built UI at /ui/ but leaves / alone, saying where the UI and the API are', async () => {
    ensureUiBuilt();
    const dir = tempDir('ui-config');
    const port = await freePort();
    const config = join(dir, 'cofre.hcl');
    writeFileSync(
      config,
      `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}"\n}\n` +
        `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\nui = true\nlog_level = "warn"\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise((done) => child.once('exit', done));
    try {
      const url = `http://127.0.0.1:${port}`;
      let page: Response | undefined;
      for (let i = 0; i < 150 && !page; i++) {
        page = await fetch(`${url}/ui/`).catch(() => undefined);
        if (!page) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(page, `the server did not come up: ${out}`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<div id="root"><\/div>/);
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      const root = await fetch(`${url}/`, { redirect: 'manual' });
      assert.equal(root.status, 404);
      assert.deepEqual(((await root.json()) as { errors: string[] }).errors, [
        'the web UI is at /ui/; the API is under /v1/ (try GET /v1/sys/health)',
      ]);
    } finally {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
