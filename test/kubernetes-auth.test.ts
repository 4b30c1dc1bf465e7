import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import nodeVault from 'node-vault';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { enableKubernetesAuth } from './kube-support.js';
import { runCli, startServer, type InProcessServer } from './support.js';

/** Kubernetes login against a real kube-apiserver: real service accounts, TokenRequest and TokenReview. */
describe('Kubernetes auth method', () => {
  let cluster: TestCluster;
  let srv: InProcessServer;
  let core: CoreV1Api;

  const saToken = async (namespace: string, name: string, audience: string): Promise<string> => {
    const res = await core.createNamespacedServiceAccountToken({
      namespace,
      name,
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: [audience], expirationSeconds: 600 },
      },
    });
    return res.status!.token;
  };
  const login = (jwt: string, role = 'web') =>
    srv.api.call('POST', 'auth/kubernetes/login', { token: '', body: { role, jwt } });

  before(async () => {
    cluster = await startCluster({ name: 'kube-auth', controllerManager: false });
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    for (const ns of ['apps', 'elsewhere']) await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const [ns, name] of [
      ['apps', 'web'],
      ['apps', 'other'],
      ['elsewhere', 'web'],
    ]) {
      await core.createNamespacedServiceAccount({ namespace: ns!, body: { metadata: { name } } });
    }
    srv = await startServer();
    const ok = (res: { status: number; text: string }) => assert.ok(res.status < 300, res.text);
    await enableKubernetesAuth(srv.api, cluster, kc);
    ok(
      await srv.api.call('PUT', 'sys/policies/acl/web-read', {
        body: { policy: 'path "secret/data/web/*" {\n  capabilities = ["read"]\n}\n' },
      }),
    );
    ok(
      await srv.api.call('POST', 'auth/kubernetes/role/web', {
        body: {
          bound_service_account_names: ['web'],
          bound_service_account_namespaces: ['apps'],
          audience: 'cofre',
          token_policies: ['web-read'],
          token_ttl: '1h',
        },
      }),
    );
    ok(await srv.api.call('POST', 'secret/data/web/db', { body: { data: { password: 'from-cofre' } } }));
  });

  after(async () => {
    await srv?.stop();
    await cluster?.stop();
  });

  it('a real service-account token from the TokenRequest API logs in and gets the role policies', async () => {
    const res = await login(await saToken('apps', 'web', 'cofre'));
    assert.equal(res.status, 200, res.text);
    const auth = res.body.auth;
    assert.deepEqual(auth.policies, ['default', 'web-read']);
    assert.equal(auth.metadata.service_account_namespace, 'apps');
    assert.equal(auth.metadata.service_account_name, 'web');
    assert.ok(auth.lease_duration > 3500 && auth.lease_duration <= 3600);
    const read = await srv.api.call('GET', 'secret/data/web/db', { token: auth.client_token });
    assert.equal(read.body.data.data.password, 'from-cofre');
    assert.equal((await srv.api.call('GET', 'secret/data/other', { token: auth.client_token })).status, 403);
  });

  it('node-vault logs in with kubernetesLogin and uses the token', async () => {
    const client = nodeVault({ apiVersion: 'v1', endpoint: srv.url });
    const res = await client.kubernetesLogin({
      mount_point: 'kubernetes',
      role: 'web',
      jwt: await saToken('apps', 'web', 'cofre'),
    });
    assert.deepEqual(res.auth.policies, ['default', 'web-read']);
    assert.equal(client.token, res.auth.client_token, 'node-vault switches to the token it logged in with');
    assert.equal((await client.read('secret/data/web/db')).data.data.password, 'from-cofre');
  });

  it('refuses a service account or namespace the role does not bind', async () => {
    const otherName = await login(await saToken('apps', 'other', 'cofre'));
    assert.equal(otherName.status, 403);
    assert.match(otherName.body.errors[0], /service account name not authorized/);
    const otherNs = await login(await saToken('elsewhere', 'web', 'cofre'));
    assert.equal(otherNs.status, 403);
    assert.match(otherNs.body.errors[0], /namespace not authorized/);
  });

  it('refuses a token for another audience, a forged token and an unknown role', async () => {
    const elsewhere = await login(await saToken('apps', 'web', 'someone-else'));
    assert.equal(elsewhere.status, 403);
    // Which audience was sent and which the role wants (issue 13): not only "the token is not valid".
    assert.match(elsewhere.body.errors[0], /issued for audience "someone-else", but role "web" wants audience "cofre"/);
    const real = await saToken('apps', 'web', 'cofre');
    const [h, p] = real.split('.');
    assert.equal((await login(`${h}.${p}.forged-signature`)).status, 403);
    const unknown = await login(real, 'nope');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.errors[0], /invalid role name/);
    assert.equal((await login('not-a-jwt')).status, 400);
  });

  it('a role without an audience refuses a token for "cofre" and says why; a token for the API server passes', async () => {
    const ok = (res: { status: number; text: string }) => assert.ok(res.status < 300, res.text);
    ok(
      await srv.api.call('POST', 'auth/kubernetes/role/no-audience', {
        body: { bound_service_account_names: ['web'], bound_service_account_namespaces: ['apps'] },
      }),
    );
    const refused = await login(await saToken('apps', 'web', 'cofre'), 'no-audience');
    assert.equal(refused.status, 403);
    assert.match(refused.body.errors[0], /issued for audience "cofre", and role "no-audience" names no audience/);
    assert.match(refused.body.errors[0], /set audience="cofre" on the role/);
    // A TokenRequest without audiences is for the API server's own (its issuer): that is what such a role takes.
    const own = await core.createNamespacedServiceAccountToken({
      namespace: 'apps',
      name: 'web',
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: [], expirationSeconds: 600 },
      },
    });
    const res = await login(own.status!.token, 'no-audience');
    assert.equal(res.status, 200, res.text);
    await srv.api.call('POST', 'auth/token/revoke-self', { token: res.body.auth.client_token });
    ok(await srv.api.call('DELETE', 'auth/kubernetes/role/no-audience'));
  });

  it('a deleted service account can no longer log in', async () => {
    await core
      .createNamespacedServiceAccount({ namespace: 'apps', body: { metadata: { name: 'web' } } })
      .catch(() => undefined);
    const jwt = await saToken('apps', 'web', 'cofre');
    assert.equal((await login(jwt)).status, 200);
    await core.deleteNamespacedServiceAccount({ namespace: 'apps', name: 'web' });
    // The API server caches a successful token authentication for a few seconds; after that the token is dead.
    const deadline = Date.now() + 20_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await login(jwt)).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(status, 403);
  });

  it('reads back its config without the reviewer JWT, and roles', async () => {
    const config = await srv.api.call('GET', 'auth/kubernetes/config');
    assert.equal(config.body.data.kubernetes_host, cluster.server);
    assert.equal(config.body.data.token_reviewer_jwt, undefined);
    const role = await srv.api.call('GET', 'auth/kubernetes/role/web');
    assert.deepEqual(role.body.data.bound_service_account_namespaces, ['apps']);
    const roles = await srv.api.call('LIST', 'auth/kubernetes/role');
    assert.deepEqual(roles.body.data.keys, ['web']);
    const bad = await srv.api.call('POST', 'auth/kubernetes/role/bad', {
      body: { bound_service_account_names: ['*'], bound_service_account_namespaces: ['*'] },
    });
    assert.equal(bad.status, 400);
  });
  it('a token is not renewed once its role is deleted or its policies changed (issue 17)', async () => {
    await core
      .createNamespacedServiceAccount({ namespace: 'apps', body: { metadata: { name: 'web' } } })
      .catch(() => undefined);
    const role = {
      bound_service_account_names: ['web'],
      bound_service_account_namespaces: ['apps'],
      audience: 'cofre',
    };
    const renew = (token: string) =>
      srv.api.call('POST', 'auth/token/renew-self', { token, body: { increment: '1h' } });
    assert.equal((await srv.api.call('POST', 'auth/kubernetes/role/temp', { body: role })).status, 204);
    const first = await login(await saToken('apps', 'web', 'cofre'), 'temp');
    assert.equal(first.status, 200, first.text);
    assert.equal((await renew(first.body.auth.client_token)).status, 200);
    assert.equal((await srv.api.call('DELETE', 'auth/kubernetes/role/temp')).status, 204);
    const refused = await renew(first.body.auth.client_token);
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.body.errors[0], /role "temp" no longer exists/);

    assert.equal((await srv.api.call('POST', 'auth/kubernetes/role/temp', { body: role })).status, 204);
    const second = await login(await saToken('apps', 'web', 'cofre'), 'temp');
    await srv.api.call('POST', 'auth/kubernetes/role/temp', { body: { token_policies: ['web-read'] } });
    const changed = await renew(second.body.auth.client_token);
    assert.equal(changed.status, 400, changed.text);
    assert.match(changed.body.errors[0], /policies of role "temp" have changed/);
  });

  it("a role's token_bound_cidrs bind the tokens of its logins to those addresses", async () => {
    const role = (cidrs: string[]) => ({
      bound_service_account_names: ['web'],
      bound_service_account_namespaces: ['apps'],
      audience: 'cofre',
      token_policies: ['web-read'],
      token_bound_cidrs: cidrs,
    });
    assert.equal((await srv.api.call('POST', 'auth/kubernetes/role/far', { body: role(['10.0.0.0/8']) })).status, 204);
    assert.equal(
      (await srv.api.call('POST', 'auth/kubernetes/role/near', { body: role(['127.0.0.0/8']) })).status,
      204,
    );
    const bad = await srv.api.call('POST', 'auth/kubernetes/role/bad', { body: role(['10.0.0.0/33']) });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.text, /invalid CIDR block/);
    const far = await login(await saToken('apps', 'web', 'cofre'), 'far');
    assert.equal(far.status, 200, far.text);
    const read = (token: string) => srv.api.call('GET', 'secret/data/web/db', { token });
    assert.equal((await read(far.body.auth.client_token)).status, 403, 'used from 127.0.0.1, bound to 10.0.0.0/8');
    const near = await login(await saToken('apps', 'web', 'cofre'), 'near');
    assert.equal((await read(near.body.auth.client_token)).status, 200);
  });

  it('cofre login -method=kubernetes logs in with a role and a service-account token', async () => {
    const jwt = await saToken('apps', 'web', 'cofre');
    const ok = await runCli(srv.url, '', 'login', '-method=kubernetes', '-no-store', 'role=web', `jwt=${jwt}`);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /token\s+cvs\./);
    assert.match(ok.out, /token_policies\s+\["default" "web-read"\]/);
    assert.doesNotMatch(ok.out, new RegExp(jwt.slice(-20)), 'the service-account token is not echoed');
    const missing = await runCli(srv.url, '', 'login', '-method=kubernetes', '-no-store', `jwt=${jwt}`);
    assert.equal(missing.code, 2, missing.out);
    assert.match(missing.out, /needs role=/);
    const unknown = await runCli(srv.url, '', 'login', '-method=nope', 'a=b');
    assert.match(unknown.out, /Unsupported auth method "nope"/);
  });

  // Last: it disables the mount the other tests use.
  it('disabling the auth method revokes every token it issued (security issue, finding 4)', async () => {
    await core
      .createNamespacedServiceAccount({ namespace: 'apps', body: { metadata: { name: 'web' } } })
      .catch(() => undefined);
    const res = await login(await saToken('apps', 'web', 'cofre'));
    assert.equal(res.status, 200, res.text);
    const token = res.body.auth.client_token as string;
    assert.equal((await srv.api.call('GET', 'secret/data/web/db', { token })).status, 200);
    const leases = await srv.api.call('LIST', 'sys/leases/lookup/auth/kubernetes/login/');
    assert.ok(leases.body?.data?.keys?.length >= 1, `the login's token is a lease: ${leases.text}`);
    assert.equal((await srv.api.call('DELETE', 'sys/auth/kubernetes')).status, 204);
    assert.equal((await srv.api.call('GET', 'secret/data/web/db', { token })).status, 403);
    assert.equal((await srv.api.call('LIST', 'sys/leases/lookup/auth/kubernetes/login/')).status, 404);
  });
});
