/**
 * DNS rebinding (src/http/browser-hosts.ts): a page whose owner re-points its name at the server's address is
 * same-origin with the server to the browser, so its requests pass the cross-site check. Before, such a page
 * initialised a new configured server and read the keys, or read a dev server's secrets with its well-known root
 * token. Real server processes (`cofre server --config` on SQLite, `cofre server --dev`) and a real Chromium that
 * resolves the attacker's name to loopback (--host-resolver-rules, as the attacker's DNS would) and runs the
 * attacker's page under it; raw requests check every name the server knows.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, type HeadlessBrowser } from './browser.js';
import { freePort, spawnDevServer, tempDir } from './support.js';

const ATTACKER = 'rebind.example';
const CONFIGURED = 'cofre.example.com';
const API_ADDR_HOST = 'cofre-api.example.net';

/** A raw request with the given Host (fetch will not send another Host than its URL's). */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `cofre server ...args` from the sources; resolves once it answers on `port`. */
async function startProcess(args: string[], port: number): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise((done) => child.once('exit', done));
  for (let i = 0; ; i++) {
    if (await send(port, 'GET', '/v1/sys/health', { host: 'localhost' }).catch(() => undefined)) break;
    if (i === 150 || child.exitCode !== null) throw new Error(`the server did not come up: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs `script` in a page the attacker served under its name, which now resolves to the server (port). */
async function underAttackerName<T>(chromium: HeadlessBrowser, port: number, script: () => Promise<T>): Promise<T> {
  const page = await chromium.browser.newPage();
  try {
    const attack = `http://${ATTACKER}:${port}/attack`;
    await page.route(attack, (route) => route.fulfill({ contentType: 'text/html', body: '<p>hello</p>' }));
    await page.goto(attack);
    return await page.evaluate(script);
  } finally {
    await page.close();
  }
}

let chromium: HeadlessBrowser;
before(async () => {
  chromium = await launchChromium([
    `--host-resolver-rules=MAP ${ATTACKER} 127.0.0.1`,
    // Chromium refuses a public page's requests to loopback (Local Network Access); Firefox and Safari do not.
    // Off, so that what is tested is the server's own refusal.
    '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights',
  ]);
});
after(() => chromium?.close());

describe('a browser reaching a configured server under a name that is not its own', () => {
  let dir: string;
  let port: number;
  let server: Awaited<ReturnType<typeof startProcess>>;

  const initialized = async () => {
    const res = await send(port, 'GET', '/v1/sys/init', { host: `127.0.0.1:${port}` });
    return (JSON.parse(res.text) as { initialized: boolean }).initialized;
  };

  before(async () => {
    dir = tempDir('rebinding');
    port = await freePort();
    const config = join(dir, 'cofre.hcl');
    writeFileSync(
      config,
      `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}"\n}\n` +
        `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\n` +
        `api_addr = "http://${API_ADDR_HOST}:${port}"\nbrowser_hosts = ["${CONFIGURED}"]\nlog_level = "warn"\n`,
    );
    server = await startProcess(['--config', config], port);
    assert.equal(await initialized(), false, 'the server is new');
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses the attacker's page in Chromium, which therefore cannot initialise the server", async () => {
    const result = await underAttackerName(chromium, port, async () => {
      const init = await fetch('/v1/sys/init', {
        method: 'PUT',
        body: JSON.stringify({ secret_shares: 1, secret_threshold: 1 }),
      });
      return { status: init.status, text: await init.text() };
    });
    assert.equal(result.status, 403, result.text);
    assert.match(result.text, new RegExp(`request for host \\\\"${ATTACKER}:${port}\\\\" is refused`));
    assert.doesNotMatch(result.text, /root_token|keys/);
    assert.equal(await initialized(), false, "the attacker's page initialised the server");
  });

  it('refuses --dev-allowed-host beside a configuration file, which names its hosts itself', () => {
    const args = ['server', '--config', join(dir, 'cofre.hcl'), '--dev-allowed-host', 'x.example'];
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /--dev-allowed-host is for dev mode; with --config, name the hosts in browser_hosts/);
  });

  it('serves browsers under the names the server knows, and other clients under any', async () => {
    const browser = { 'sec-fetch-site': 'same-origin' };
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `${CONFIGURED}:${port}`,
      `${API_ADDR_HOST}:${port}`,
    ]) {
      const res = await send(port, 'GET', '/v1/sys/seal-status', { host, ...browser });
      assert.equal(res.status, 200, `${host}: ${res.text}`);
    }
    const refused = await send(port, 'GET', '/v1/sys/seal-status', { host: `${ATTACKER}:${port}`, ...browser });
    assert.equal(refused.status, 403, refused.text);
    // A browser too old for Fetch Metadata still sends Origin with a write.
    const old = await send(
      port,
      'POST',
      '/v1/sys/init',
      { host: `${ATTACKER}:${port}`, origin: `http://${ATTACKER}:${port}`, 'content-type': 'text/plain' },
      JSON.stringify({ secret_shares: 1, secret_threshold: 1 }),
    );
    assert.equal(old.status, 403, old.text);
    assert.equal(await initialized(), false);
    // The CLI, SDKs and the operator send neither header, under whatever name a load balancer or Service gives.
    const cli = await send(port, 'GET', '/v1/sys/seal-status', { host: 'cofre.cofre-system.svc:8200' });
    assert.equal(cli.status, 200, cli.text);
  });
});

describe('a dev server on loopback reached under a name that is not its own', () => {
  let port: number;
  let dir: string;
  let server: Awaited<ReturnType<typeof spawnDevServer>>;
  const SECRET = 'dev-secret-5d0c7a';

  before(async () => {
    dir = tempDir('rebinding-dev');
    port = await freePort();
    server = await spawnDevServer(dir, port, 'root', ['--dev-allowed-host', CONFIGURED, '--log-level', 'warn']);
    const body = JSON.stringify({ data: { value: SECRET } });
    const write = await send(
      port,
      'POST',
      '/v1/secret/data/app',
      { host: `localhost:${port}`, 'x-vault-token': 'root' },
      body,
    );
    assert.equal(write.status, 200, write.text);
  });
  after(async () => {
    if (server && server.child.exitCode === null) {
      const exited = new Promise((done) => server.child.once('exit', done));
      server.child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the well-known root token from the attacker's page, whose reads carry no browser header", async () => {
    const result = await underAttackerName(chromium, port, async () => {
      const read = await fetch('/v1/secret/data/app', { headers: { 'X-Vault-Token': 'root' } });
      return { status: read.status, text: await read.text() };
    });
    assert.equal(result.status, 403, result.text);
    assert.match(result.text, /a dev server answers only to an IP address, localhost/);
    assert.ok(!result.text.includes(SECRET), 'the secret reached the page');
  });

  it('answers clients under an address, localhost or a name given with --dev-allowed-host, and no other', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `${CONFIGURED}:${port}`]) {
      const res = await send(port, 'GET', '/v1/secret/data/app', { host, 'x-vault-token': 'root' });
      assert.equal(res.status, 200, `${host}: ${res.text}`);
    }
    const other = await send(port, 'GET', '/v1/secret/data/app', {
      host: `${ATTACKER}:${port}`,
      'x-vault-token': 'root',
    });
    assert.equal(other.status, 403, other.text);
    assert.ok(!other.text.includes(SECRET));
  });

  it('refuses to start with a --dev-allowed-host that is not a host name', () => {
    // Refused before anything opens or any server thread starts: no address is needed.
    const args = ['server', '--dev', '--workers', '2', '--dev-allowed-host', 'http://x.example'];
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /^Error starting server: --dev-allowed-host: "http:\/\/x.example" is not a host name/);
  });
});
