// COFRE_CACERT as the webhook sets it: the PEM itself or a PEM file's path. The agent (a real process) reaches an
// https Cofre signed by a private CA either way, and refuses it without the CA. The server is sealed, so the login
// the agent attempts is answered 503: an answer that only a verified TLS connection gets.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCofre, type Cofre } from '../src/app.js';
import { spawnAgent } from './pod-agent-support.js';
import { selfSignedCert, tempDir } from './support.js';

describe('cofre agent over TLS with a private CA', () => {
  const dir = tempDir('pod-agent-tls');
  let cofre: Cofre;
  let address: string;
  let cert: string;
  const env = (ca?: string) => {
    writeFileSync(join(dir, 'token'), 'not-a-real-jwt');
    const config = {
      auth: { role: 'app', token_path: join(dir, 'token') },
      files_dir: join(dir, 'secrets'),
      items: [{ name: 'db', kv: 'secret/app/db', file: { path: 'db.json' } }],
    };
    return { COFRE_ADDR: address, COFRE_AGENT_CONFIG: JSON.stringify(config), ...(ca ? { COFRE_CACERT: ca } : {}) };
  };
  const runInit = async (ca?: string) => {
    const agent = spawnAgent(['-init'], env(ca));
    const exit = await agent.exited;
    return { code: exit.code, out: agent.output() };
  };

  before(async () => {
    const files = selfSignedCert(dir);
    cert = files.cert;
    cofre = await createCofre({
      storage: { type: 'sqlite', path: join(dir, 'cofre.db') },
      logLevel: 'error',
      tls: { cert: readFileSync(files.cert), key: readFileSync(files.key) },
    });
    await cofre.http.listen({ host: '127.0.0.1', port: 0 });
    const bound = cofre.http.server.address();
    address = `https://127.0.0.1:${typeof bound === 'object' && bound ? bound.port : 0}`;
  });
  after(async () => {
    await cofre?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes the CA as inline PEM or as a file path', async () => {
    for (const ca of [readFileSync(cert, 'utf8'), cert]) {
      const { code, out } = await runInit(ca);
      assert.equal(code, 1);
      assert.match(out, /login to https:\/\/127\.0\.0\.1:\d+ auth\/kubernetes as role "app" failed \(503/, out);
      assert.doesNotMatch(out, /certificate/);
    }
  });

  it('refuses the server without the CA, and says how to give one', async () => {
    const { code, out } = await runInit();
    assert.equal(code, 1);
    assert.match(out, /certificate/);
    assert.match(out, /COFRE_CACERT/);
  });
});
