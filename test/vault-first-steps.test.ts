// The first steps of a migration from Vault, as clients we did not write take them (issue 11's opening list):
// what the official Go client and the Vault CLI send, byte for byte, over raw HTTP, and Python's hvac itself.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

describe('a Vault user’s first steps', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ initialised: true });
  });
  after(() => srv.stop());

  it('mounts and auth methods enable as the Go client sends them (config.options null, empty TTLs)', async () => {
    // github.com/hashicorp/vault/api MountInput: the whole MountConfigInput, "options" null, TTLs "".
    const config = {
      default_lease_ttl: '',
      max_lease_ttl: '',
      force_no_cache: false,
      description: null,
      audit_non_hmac_request_keys: null,
      audit_non_hmac_response_keys: null,
      listing_visibility: '',
      passthrough_request_headers: null,
      allowed_response_headers: null,
      token_type: '',
      allowed_managed_keys: null,
      plugin_version: '',
      options: null,
    };
    const secrets = await srv.api.call('POST', 'sys/mounts/kv-go', {
      body: { type: 'kv', description: '', config, local: false, seal_wrap: false, options: { version: '2' } },
    });
    assert.equal(secrets.status, 204, secrets.text);
    const auth = await srv.api.call('POST', 'sys/auth/approle-go', {
      body: { type: 'approle', description: '', config, local: false, seal_wrap: false },
    });
    assert.equal(auth.status, 204, auth.text);
    // node-vault's mount and enableAuth put the path in the body as well.
    const nodeVault = await srv.api.call('POST', 'sys/auth/up-nv', {
      body: { mount_point: 'up-nv', type: 'userpass' },
    });
    assert.equal(nodeVault.status, 204, nodeVault.text);
    const typo = await srv.api.call('POST', 'sys/mounts/typo', {
      body: { type: 'kv', config: { default_lease: '1h' } },
    });
    assert.equal(typo.status, 400, 'a key Vault does not know is still a typo');
  });

  it('a partial tune leaves the TTLs alone ("" is unchanged), and "system" resets them', async () => {
    const tune = (body: Record<string, unknown>) => srv.api.call('POST', 'sys/mounts/kv-go/tune', { body });
    assert.equal((await tune({ default_lease_ttl: '1h', max_lease_ttl: '2h' })).status, 204);
    // `vault secrets tune -description=x` sends every TTL as "".
    assert.equal((await tune({ description: 'x', default_lease_ttl: '', max_lease_ttl: '' })).status, 204);
    let read = (await srv.api.call('GET', 'sys/mounts/kv-go/tune')).body.data;
    assert.deepEqual([read.default_lease_ttl, read.max_lease_ttl, read.description], [3600, 7200, 'x']);
    assert.equal((await tune({ default_lease_ttl: 'system' })).status, 204);
    read = (await srv.api.call('GET', 'sys/mounts/kv-go/tune')).body.data;
    assert.equal(read.max_lease_ttl, 7200);
    assert.notEqual(read.default_lease_ttl, 3600, '"system" went back to the default');
  });

  it('`vault auth tune` works: sys/mounts/auth/<path>/tune tunes the auth method, with sudo', async () => {
    const tuned = await srv.api.call('POST', 'sys/mounts/auth/approle-go/tune', { body: { default_lease_ttl: '30m' } });
    assert.equal(tuned.status, 204, tuned.text);
    assert.equal((await srv.api.call('GET', 'sys/auth/approle-go/tune')).body.data.default_lease_ttl, 1800);
    assert.equal((await srv.api.call('GET', 'sys/mounts/auth/approle-go/tune')).body.data.default_lease_ttl, 1800);
    await srv.api.call('PUT', 'sys/policies/acl/mount-tuner', {
      body: { policy: 'path "sys/mounts/*" {\n  capabilities = ["read", "update"]\n}\n' },
    });
    const limited = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['mount-tuner'] } });
    const token = limited.body.auth.client_token as string;
    const refused = await srv.api.call('POST', 'sys/mounts/auth/approle-go/tune', {
      token,
      body: { default_lease_ttl: '1s' },
    });
    assert.equal(refused.status, 403, 'an auth method is tuned with sudo, by either path');
    assert.equal(
      (await srv.api.call('POST', 'sys/mounts/kv-go/tune', { token, body: { description: 'y' } })).status,
      204,
    );
  });

  it('the Go client’s default token create ("type": "") works', async () => {
    const res = await srv.api.call('POST', 'auth/token/create', {
      body: { policies: ['default'], type: '', meta: null, no_parent: false, ttl: '' },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.auth.token_type, 'service');
  });

  it('a request for response wrapping is wrapped: wrap_info only, never the token in clear', async () => {
    const before = (await srv.api.call('LIST', 'auth/token/accessors')).body.data.keys.length as number;
    const wrapped = await srv.api.call('POST', 'auth/token/create', {
      body: { policies: ['default'] },
      headers: { 'x-vault-wrap-ttl': '60s' },
    });
    assert.equal(wrapped.status, 200, wrapped.text);
    assert.equal(wrapped.body.auth, null);
    assert.equal(wrapped.body.wrap_info.ttl, 60);
    assert.equal(wrapped.body.wrap_info.creation_path, 'auth/token/create');
    assert.doesNotMatch(wrapped.text, /client_token/);
    // The wrapped token and its wrapping token.
    assert.equal((await srv.api.call('LIST', 'auth/token/accessors')).body.data.keys.length, before + 2);
    const unwrapped = await srv.api.call('PUT', 'sys/wrapping/unwrap', {
      body: { token: wrapped.body.wrap_info.token },
    });
    assert.equal(unwrapped.status, 200, unwrapped.text);
    assert.equal(unwrapped.body.auth.accessor, wrapped.body.wrap_info.wrapped_accessor);
    const refused = await srv.api.call('POST', 'auth/token/create', {
      body: { policies: ['default'] },
      headers: { 'x-vault-wrap-ttl': 'later' },
    });
    assert.equal(refused.status, 400, 'a bad wrap TTL refuses the request');
    assert.doesNotMatch(refused.text, /client_token|cvs\./);
  });

  it('answers with Content-Type application/json exactly, errors included', async () => {
    for (const [method, path] of [
      ['GET', 'sys/mounts'],
      ['GET', 'secret/data/nothing-here'],
      ['GET', 'nosuchmount/x'],
    ] as const) {
      const res = await fetch(`${srv.url}/v1/${path}`, { method, headers: { 'x-vault-token': srv.rootToken } });
      assert.equal(res.headers.get('content-type'), 'application/json', `${method} ${path}`);
    }
  });

  it('hvac (Python, from PyPI) reads errors and a deleted version', async () => {
    const script = `
import hvac, sys
c = hvac.Client(url=sys.argv[1], token=sys.argv[2])
c.secrets.kv.v2.create_or_update_secret(path="hv/app", secret={"password": "one"})
c.secrets.kv.v2.delete_latest_version_of_secret(path="hv/app")
r = c.secrets.kv.v2.read_secret_version(path="hv/app", raise_on_deleted_version=False)
print("deleted version:", r["data"]["metadata"]["deletion_time"] != "")
try:
    c.secrets.kv.v2.read_secret_version(path="hv/none", raise_on_deleted_version=True)
    print("no error")
except hvac.exceptions.InvalidPath as e:
    print("InvalidPath")
try:
    hvac.Client(url=sys.argv[1], token="nope").secrets.kv.v2.read_secret_version(path="hv/app")
except hvac.exceptions.Forbidden as e:
    print("Forbidden:", e.errors)
`;
    // Not spawnSync: the server runs in this process and must answer meanwhile.
    const run = await promisify(execFile)('python3', ['-c', script, srv.url, srv.rootToken], { timeout: 60_000 }).catch(
      (err: { stderr?: string }) =>
        assert.fail(`hvac is needed (pip install hvac; .ci/run installs it): ${err.stderr}`),
    );
    assert.match(run.stdout, /deleted version: True/);
    assert.match(run.stdout, /^InvalidPath$/m);
    assert.match(run.stdout, /Forbidden: \['permission denied: invalid or expired token'\]/);
  });
});
