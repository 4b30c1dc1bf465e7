// The read-only paths the web UI's pipeline pages use beside the writes: the previews (src/clusters/preview.ts) — a
// delivery definition rendered as the agent would apply it, never with a value and never written; which clusters a
// placement would select, gain and lose — and a delivery's status across its placements (the lifecycle map). The
// previews refuse what the writes refuse, and the delivery preview asks for read on the KV sources as the write
// does, so it cannot show a secret's key names to a token that may not read the secret.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

const VALUES = { password: 'pw-preview-6d1e0b', user: 'user-preview-93af27', level: 'loglevel-preview-c4e1' };

const SHOP = {
  namespace: 'shop',
  items: [
    { name: 'shop-db', mode: 'secret', kv: { mount: 'secret', path: 'app/db', keys: ['password'] } },
    { name: 'shop-env', mode: 'env', kv: { mount: 'secret', path: 'app/db' } },
    { name: 'shop-config', mode: 'configmap', literal: { LOG_LEVEL: VALUES.level } },
  ],
  rollout: [{ kind: 'Deployment', name: 'shop' }],
};

describe('delivery and placement previews, and a delivery’s status', () => {
  let server: InProcessServer;

  before(async () => {
    server = await startServer();
    await writeOk(server.api, 'secret/data/app/db', { data: { password: VALUES.password, user: VALUES.user } });
  });
  after(async () => server?.stop());

  const preview = (path: string, body: unknown, token?: string) =>
    server.api.call('PUT', `sys/cofre/${path}/preview`, { body, ...(token ? { token } : {}) });
  const errorsOf = (res: { body: { errors?: string[] } }) => (res.body.errors ?? []).join('; ');
  const noValues = (text: string) => {
    for (const value of Object.values(VALUES)) assert.ok(!text.includes(value), `a value is in ${text}`);
  };

  it('renders each object as the agent applies it, keys without values, and writes nothing', async () => {
    const res = await preview('deliveries/shop', SHOP);
    assert.equal(res.status, 200, res.text);
    noValues(res.text);
    const data = res.body.data;
    assert.equal(data.revision, 1);
    assert.equal(data.current_revision, 0);
    assert.equal(data.source_error, null);
    const [db, env, config] = data.objects;
    assert.deepEqual(db.manifest, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'shop-db',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'cofre', 'cofre.dev/delivery': 'shop' },
        annotations: { 'cofre.dev/revision': '1' },
      },
      type: 'Opaque',
      data: { password: '(value not shown)' },
    });
    assert.equal(db.source, 'kv secret/app/db');
    // Without keys, every key of the secret, by name.
    assert.deepEqual(Object.keys(env.manifest.data).sort(), ['password', 'user']);
    assert.equal(env.manifest.metadata.annotations['cofre.dev/requested-mode'], 'env');
    assert.equal(config.manifest.kind, 'ConfigMap');
    assert.deepEqual(config.manifest.data, { LOG_LEVEL: '(value not shown)' });
    assert.deepEqual(data.rollout, [
      {
        kind: 'Deployment',
        name: 'shop',
        namespace: 'shop',
        patch: { spec: { template: { metadata: { annotations: { 'cofre.dev/revision': '1' } } } } },
      },
    ]);
    assert.deepEqual(data.notes, [
      'Secret shop/shop-env was asked for as environment variables; written as a Secret because in-pod delivery is not available',
    ]);
    assert.equal((await server.api.call('GET', 'sys/cofre/deliveries/shop')).status, 404, 'the preview wrote it');
  });

  it('shows the revision a write would make: the same for an unchanged definition, the next for a change', async () => {
    await writeOk(server.api, 'sys/cofre/deliveries/shop', SHOP);
    let res = await preview('deliveries/shop', SHOP);
    assert.equal(res.body.data.revision, 1, res.text);
    assert.equal(res.body.data.current_revision, 1);
    res = await preview('deliveries/shop', { ...SHOP, rollout: [] });
    assert.equal(res.body.data.revision, 2, res.text);
    assert.deepEqual(res.body.data.objects[0].manifest.metadata.annotations, { 'cofre.dev/revision': '2' });
    assert.equal((await server.api.call('GET', 'sys/cofre/deliveries/shop')).body.data.revision, 1);
  });

  it('names a missing source, and refuses a bad definition with the write’s message', async () => {
    let res = await preview('deliveries/broken', {
      namespace: 'shop',
      items: [{ name: 'x', mode: 'secret', kv: { mount: 'secret', path: 'no/such' } }],
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.source_error, 'kv secret "secret/no/such" not found');
    assert.deepEqual(res.body.data.objects, []);
    // KV allows keys Kubernetes does not: taken as "every key", the agents would refuse the payload.
    await writeOk(server.api, 'secret/data/app/odd', { data: { 'has space': VALUES.user } });
    res = await preview('deliveries/broken', {
      namespace: 'shop',
      items: [{ name: 'x', mode: 'secret', kv: { mount: 'secret', path: 'app/odd' } }],
    });
    assert.equal(res.status, 200, res.text);
    // Said as a source error, as the write says it (no revision is made of it), naming the key, never a value.
    assert.match(
      res.body.data.source_error,
      /^kv secret "secret\/app\/odd" has key "has space", which cannot be a Kubernetes data key \(.*\): list the keys to deliver in kv\.keys$/,
    );
    noValues(res.text);
    res = await preview('deliveries/broken', {
      namespace: 'shop',
      items: [{ name: 'x', mode: 'secret', literal: { a: 'b' } }],
    });
    assert.equal(res.status, 400);
    assert.match(errorsOf(res), /a literal source is for configmap items only/);
    res = await preview('deliveries/broken', { namespace: 'shop' });
    assert.equal(res.status, 400);
    assert.match(errorsOf(res), /items/);
    res = await preview('deliveries/Bad_Name', SHOP);
    assert.equal(res.status, 400);
    assert.match(errorsOf(res), /invalid delivery name "Bad_Name"/);
    res = await preview('deliveries/shop', { ...SHOP, surprise: true });
    assert.equal(res.status, 400);
    assert.match(errorsOf(res), /surprise/);
  });

  it('asks for read on the KV sources, as the write does', async () => {
    const grant = 'path "sys/cofre/deliveries/*" { capabilities = ["update"] }\n';
    await writeOk(server.api, 'sys/policies/acl/previewer', { policy: grant });
    await writeOk(server.api, 'sys/policies/acl/reader', {
      policy: grant + 'path "secret/data/app/db" { capabilities = ["read"] }\n',
    });
    const tokenOf = async (policy: string) =>
      (await writeOk(server.api, 'auth/token/create', { policies: [policy] })).body.auth.client_token as string;
    let res = await preview('deliveries/shop', SHOP, await tokenOf('previewer'));
    assert.equal(res.status, 403, res.text);
    assert.match(errorsOf(res), /delivering "secret\/data\/app\/db" needs read on it/);
    noValues(res.text);
    assert.ok(!res.text.includes('"user"'), 'a key name leaked');
    res = await preview('deliveries/shop', SHOP, await tokenOf('reader'));
    assert.equal(res.status, 200, res.text);
  });

  it('lists the clusters a placement would select, gain and lose, without writing it', async () => {
    for (const [name, region] of [
      ['eu-a', 'eu'],
      ['eu-b', 'eu'],
      ['us-a', 'us'],
    ]) {
      await writeOk(server.api, `sys/cofre/clusters/${name}`, { labels: { region } });
    }
    const eu = { delivery: 'shop', selector: { matchLabels: { region: 'eu' } } };
    let res = await preview('placements/shop-main', eu);
    assert.equal(res.status, 200, res.text);
    const data = res.body.data;
    assert.deepEqual(
      data.selected.map((c: { name: string }) => c.name),
      ['eu-a', 'eu-b'],
    );
    assert.deepEqual(data.selected[0], { name: 'eu-a', labels: { region: 'eu' }, state: 'pending', last_seen: null });
    assert.deepEqual([data.gains, data.loses, data.currently_selected], [['eu-a', 'eu-b'], [], []]);
    assert.equal(data.delivery_revision, 1);
    assert.equal((await server.api.call('GET', 'sys/cofre/placements/shop-main')).status, 404);

    await writeOk(server.api, 'sys/cofre/placements/shop-main', eu);
    // eu-a is also named by another placement of the same delivery: it keeps the delivery whatever shop-main does.
    await writeOk(server.api, 'sys/cofre/placements/shop-pinned', { delivery: 'shop', clusters: ['eu-a'] });
    res = await preview('placements/shop-main', { delivery: 'shop', selector: { matchLabels: { region: 'us' } } });
    assert.deepEqual(
      [res.body.data.gains, res.body.data.loses, res.body.data.currently_selected],
      [['us-a'], ['eu-b'], ['eu-a', 'eu-b']],
    );
    res = await preview('placements/shop-main', { unpublish: true });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual([res.body.data.selected, res.body.data.gains, res.body.data.loses], [[], [], ['eu-b']]);
    assert.equal((await server.api.call('GET', 'sys/cofre/placements/shop-main')).status, 200, 'it was deleted');
  });

  it('shows a delivery’s clusters across its placements, each once, with the placements that select it', async () => {
    const res = await server.api.call('GET', 'sys/cofre/deliveries/shop/status');
    assert.equal(res.status, 200, res.text);
    const data = res.body.data;
    assert.deepEqual(
      [data.delivery, data.namespace, data.revision, data.source_error, data.placements],
      ['shop', 'shop', 1, null, ['shop-main', 'shop-pinned']],
    );
    assert.deepEqual(Object.keys(data.clusters), ['eu-a', 'eu-b']);
    assert.deepEqual(data.clusters['eu-a'], {
      state: 'pending',
      desired_revision: 1,
      revision: 0,
      applied_at: null,
      error: null,
      pods: {},
      notes: [],
      last_seen: null,
      placements: ['shop-main', 'shop-pinned'],
    });
    assert.deepEqual(data.clusters['eu-b'].placements, ['shop-main']);
    // The same entry as the placement's own status shows.
    const placement = (await server.api.call('GET', 'sys/cofre/placements/shop-main')).body.data;
    const { placements: _via, ...asPlaced } = data.clusters['eu-b'];
    assert.deepEqual(asPlaced, placement.status.clusters['eu-b']);
    noValues(res.text);

    const missing = await server.api.call('GET', 'sys/cofre/deliveries/nothing/status');
    assert.equal(missing.status, 404);
    await writeOk(server.api, 'sys/policies/acl/delivery-reader', {
      policy: 'path "sys/cofre/deliveries/+" { capabilities = ["read"] }\n',
    });
    const token = (await writeOk(server.api, 'auth/token/create', { policies: ['delivery-reader'] })).body.auth
      .client_token as string;
    const refused = await server.api.call('GET', 'sys/cofre/deliveries/shop/status', { token });
    assert.equal(refused.status, 403, 'a policy on deliveries/+ does not reach deliveries/shop/status');
  });

  it('refuses a placement preview of a missing delivery or placement, or a bad selector', async () => {
    let res = await preview('placements/p', { delivery: 'nothing', clusters: ['eu-a'] });
    assert.equal(res.status, 400);
    assert.match(errorsOf(res), /no delivery "nothing"/);
    res = await preview('placements/never-written', { unpublish: true });
    assert.equal(res.status, 404);
    assert.match(errorsOf(res), /no placement "never-written"/);
    res = await preview('placements/p', { delivery: 'shop', selector: { matchLabels: { 'bad key!': 'x' } } });
    assert.equal(res.status, 400);
    assert.match(errorsOf(res), /invalid label key "bad key!"/);
    res = await preview('placements/p', { delivery: 'shop' });
    assert.equal(res.status, 400);
    assert.match(errorsOf(res), /needs a "selector" and\/or "clusters"/);
  });
});
