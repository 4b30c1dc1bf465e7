/**
 * The web UI's pipeline pages in a real browser (Debian's Chromium, headless, through playwright-core) against a
 * real in-process server, two real kube-apiservers (one with a controller manager, so the Deployment makes pods)
 * and one real `cofre cluster-agent` process each: a delivery composed with an environment-variable item and a
 * Secret item and its objects previewed; clusters registered (each bootstrap token shown once); a placement by
 * label previewed and published; the lifecycle map showing both clusters on the revision, moving to the next one
 * after the KV secret is rotated; a cluster relabelled and deregistered; the placement unpublished. No secret value
 * may reach the browser at all, and a bootstrap token only in the answer that registers its cluster.
 * Screenshots go to docs/ui/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { Page } from 'playwright-core';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { ensureUiBuilt, launchChromium, type HeadlessBrowser } from './browser.js';
import { startClusterAgent, type AgentProcess } from './cluster-agent-process.js';
import { poll } from './poll.js';
import { startServer, writeOk, type InProcessServer } from './support.js';
import {
  assertFits,
  assertLabelled,
  assertNoLeaks,
  buttonOn,
  confirmIn,
  recordedPage,
  type RecordedPage,
} from './ui-support.js';

const SHOTS = join(import.meta.dirname, '..', 'docs', 'ui');
const AGENT_NS = 'cofre-agent';
const APP_NS = 'shop';
/** The KV secret's values before and after the rotation: the browser never sees either. */
const VALUES = { first: 'pw-ui-pipeline-first-1b8e53', rotated: 'pw-ui-pipeline-rotated-7c02fa', user: 'svc-2d9a1e' };

interface Member {
  name: string;
  cluster: TestCluster;
  core: k8s.CoreV1Api;
  bootstrapToken?: string;
  agent?: AgentProcess;
}

describe('the pipeline pages in Chromium, with two real clusters and their agents', () => {
  let srv: InProcessServer;
  let chromium: HeadlessBrowser;
  let recorded: RecordedPage;
  let page: Page;
  let adminToken: string;
  let usToken: string;
  const members: Record<string, Member> = {};

  before(async () => {
    ensureUiBuilt();
    mkdirSync(SHOTS, { recursive: true });
    srv = await startServer({ ui: true });
    await writeOk(srv.api, 'secret/data/shop/db', { data: { password: VALUES.first, user: VALUES.user } });
    await writeOk(srv.api, 'sys/policies/acl/pipeline-admin', {
      policy: 'path "*" {\n  capabilities = ["create", "read", "update", "delete", "list"]\n}\n',
    });
    adminToken = (await writeOk(srv.api, 'auth/token/create', { policies: ['pipeline-admin'] })).body.auth.client_token;
    const clusters = await Promise.all([
      startCluster({ name: 'uip-eu-1', controllerManager: true }),
      startCluster({ name: 'uip-eu-2', controllerManager: false }),
    ]);
    for (const [i, name] of ['eu-1', 'eu-2'].entries()) {
      const cluster = clusters[i]!;
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      for (const ns of [AGENT_NS, APP_NS]) await core.createNamespace({ body: { metadata: { name: ns } } });
      await kc.makeApiClient(k8s.AppsV1Api).createNamespacedDeployment({
        namespace: APP_NS,
        body: {
          metadata: { name: 'shop' },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'shop' } },
            // No kubelet runs pods here, so new pods never become ready: old and new revisions stay side by side.
            strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '100%', maxUnavailable: 0 } },
            template: {
              metadata: { labels: { app: 'shop' } },
              spec: { containers: [{ name: 'shop', image: 'nginx' }] },
            },
          },
        },
      });
      members[name] = { name, cluster, core };
    }
    chromium = await launchChromium();
    recorded = await recordedPage(chromium);
    page = recorded.page;
  });

  after(async () => {
    await recorded?.context.close();
    await chromium?.close();
    for (const m of Object.values(members)) await m.agent?.stop();
    await Promise.all(Object.values(members).map((m) => m.cluster.stop()));
    await srv?.stop();
  });

  const button = (name: string) => buttonOn(page, name);
  const status = (text: string | RegExp) => page.getByRole('status').filter({ hasText: text }).waitFor();
  const secretExists = async (m: Member, name: string): Promise<boolean> =>
    m.core.readNamespacedSecret({ name, namespace: APP_NS }).then(
      () => true,
      () => false,
    );
  const deliveryRevision = async (): Promise<number> =>
    (await srv.api.call('GET', 'sys/cofre/deliveries/shop')).body.data.revision as number;

  it('signs in with a token and shows the pipeline sections', async () => {
    await page.goto(`${srv.url}/ui/`);
    await page.getByLabel('With a token').check();
    await page.getByLabel('Token', { exact: true }).fill(adminToken);
    await button('Sign in').click();
    for (const section of ['Deliveries', 'Clusters', 'Placements'])
      await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: section }).waitFor();
  });

  it('composes a delivery with an environment-variable item and a Secret item, and previews its objects', async () => {
    await page.getByRole('link', { name: 'Deliveries', exact: true }).click();
    await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
    await page.getByLabel('New delivery name').fill('shop');
    await button('Create').click();
    await page.getByRole('heading', { name: 'New delivery shop' }).waitFor();
    await page.getByLabel('Namespace').fill(APP_NS);
    const first = page.getByRole('group', { name: 'Item 1' });
    await first.getByLabel('Object name').fill('shop-env');
    await first.getByLabel('Delivered as').selectOption('env');
    await first.getByLabel('Secret path').fill('shop/db');
    await first.getByLabel(/^Keys/).fill('password');
    await button('Add an item').click();
    const second = page.getByRole('group', { name: 'Item 2' });
    await second.getByLabel('Object name').fill('shop-db');
    await second.getByLabel('Delivered as').selectOption('secret');
    await second.getByLabel('Secret path').fill('shop/db');
    await button('Add a workload').click();
    await page.getByLabel('Name of workload 1').fill('shop');
    await assertLabelled(page, 'the delivery editor');

    await button('Preview the objects').click();
    const preview = page.getByRole('region', { name: /Preview: revision 1 in namespace shop/ });
    await preview.waitFor();
    const text = await preview.innerText();
    assert.match(text, /Secret shop\/shop-env/);
    assert.match(text, /Secret shop\/shop-db/);
    assert.match(text, /"cofre\.dev\/requested-mode": "env"/);
    assert.match(text, /keys: password, user/);
    assert.match(text, /"password": "\(value not shown\)"/);
    assert.match(text, /Deployment shop\/shop: its pod template gets/);
    assert.match(text, /asked for as environment variables; written as a Secret/);
    for (const value of Object.values(VALUES)) assert.ok(!text.includes(value), 'a value is in the preview');
    assert.equal((await srv.api.call('GET', 'sys/cofre/deliveries/shop')).status, 404, 'a preview wrote it');
    await page.screenshot({ path: join(SHOTS, 'delivery.png'), fullPage: true });

    await button('Save').click();
    await status('Saved shop: revision 1.');
    await page.getByRole('heading', { name: 'Delivery shop' }).waitFor();
    const stored = (await srv.api.call('GET', 'sys/cofre/deliveries/shop')).body.data;
    assert.deepEqual(stored.items, [
      { name: 'shop-env', mode: 'env', kv: { mount: 'secret', path: 'shop/db', keys: ['password'] } },
      { name: 'shop-db', mode: 'secret', kv: { mount: 'secret', path: 'shop/db' } },
    ]);
    assert.deepEqual(stored.rollout, [{ kind: 'Deployment', name: 'shop' }]);
  });

  it('shows a refused definition with the server’s message', async () => {
    await page.getByRole('group', { name: 'Item 1' }).getByLabel('Object name').fill('Not_A_Name');
    await button('Preview the objects').click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /items\[0\]\.name must be a Kubernetes object name/);
    await page.getByRole('group', { name: 'Item 1' }).getByLabel('Object name').fill('shop-env');
  });

  /** Registers a cluster in the page; returns the bootstrap token it showed. */
  const register = async (
    name: string,
    labels: string,
    how: { shot?: string; keyboard?: boolean } = {},
  ): Promise<string> => {
    const registered = page.waitForResponse(
      (r) => r.request().method() === 'PUT' && r.url().endsWith(`/v1/sys/cofre/clusters/${name}`),
    );
    if (how.keyboard) {
      // Keyboard alone: the name field, Tab to the labels, Enter submits.
      await page.getByLabel('Cluster name').focus();
      await page.keyboard.type(name);
      await page.keyboard.press('Tab');
      await page.keyboard.type(labels);
      await page.keyboard.press('Enter');
    } else {
      await page.getByLabel('Cluster name').fill(name);
      await page.getByLabel('Labels', { exact: true }).fill(labels);
      await button('Register').click();
    }
    const answer = await registered;
    assert.equal(answer.status(), 200);
    const panel = page.getByRole('region', { name: `Bootstrap token for ${name}` });
    await panel.waitFor();
    // Focus moves to it, so a screen reader reads the warning first.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), `Bootstrap token for ${name}`);
    assert.match(await panel.innerText(), /Shown once/);
    const token = await panel.getByLabel('Bootstrap token').inputValue();
    assert.match(token, /^cbt\./);
    assert.match(await panel.getByLabel('Commands to install the agent').innerText(), new RegExp(`token=${token}`));
    if (how.shot) {
      // The token is a real one of this test's server: the picture masks it anyway, as a reader's would be.
      await page.screenshot({
        path: join(SHOTS, how.shot),
        mask: [panel.getByLabel('Bootstrap token'), panel.getByLabel('Commands to install the agent')],
        maskColor: '#d0d7de',
      });
    }
    if (how.keyboard) {
      // From the focused heading, Tab reaches the button that hides the token; Enter presses it.
      for (let i = 0; i < 6; i++) {
        if ((await page.evaluate(() => document.activeElement?.textContent)) === 'I have copied it: hide the token')
          break;
        await page.keyboard.press('Tab');
      }
      await page.keyboard.press('Enter');
    } else {
      await button('I have copied it: hide the token').click();
    }
    await panel.waitFor({ state: 'hidden' });
    assert.ok(!(await page.content()).includes(token), 'the token is still in the page');
    return token;
  };

  it('registers the clusters, each bootstrap token shown once, and their agents enrol with them', async () => {
    await page.getByRole('link', { name: 'Clusters', exact: true }).click();
    await page.getByRole('heading', { name: 'Clusters' }).waitFor();
    await assertLabelled(page, 'the clusters page');
    members['eu-1']!.bootstrapToken = await register('eu-1', 'region=eu, tier=store', { shot: 'cluster-register.png' });
    members['eu-2']!.bootstrapToken = await register('eu-2', 'region=eu, tier=hq');
    // A third cluster, never enrolled: a placement by region=eu must leave it out.
    usToken = await register('us-1', 'region=us', { keyboard: true });
    // Registering again under a taken name is refused in the page (no token, labels unchanged).
    await page.getByLabel('Cluster name').fill('eu-1');
    await button('Register').click();
    await page.getByRole('alert').filter({ hasText: 'registered already' }).waitFor();
    // A reload shows no token: the server keeps only its hash, the page kept it only in memory.
    await page.reload();
    await page.getByRole('table', { name: 'Registered clusters' }).waitFor();
    for (const m of Object.values(members)) assert.ok(!(await page.content()).includes(m.bootstrapToken!));

    for (const m of Object.values(members)) {
      m.agent = startClusterAgent({
        serverUrl: srv.url,
        kubeconfigPath: m.cluster.kubeconfigPath,
        namespace: AGENT_NS,
        bootstrapToken: m.bootstrapToken!,
      });
    }
    for (const m of Object.values(members))
      await poll(`${m.name} enrolled and reporting`, async () => {
        const res = await srv.api.call('GET', `sys/cofre/clusters/${m.name}`);
        return res.body.data?.health === 'ok' ? true : undefined;
      });
    await page.reload();
    const table = page.getByRole('table', { name: 'Registered clusters' });
    await table.waitFor();
    for (const name of ['eu-1', 'eu-2']) {
      const row = await table.locator(`tr[data-cluster="${name}"]`).innerText();
      assert.match(row, /enrolled/);
      assert.match(row, /ok/);
      assert.doesNotMatch(row, /never/);
    }
    assert.match(await table.locator('tr[data-cluster="us-1"]').innerText(), /waiting for its agent/);
    await page.screenshot({ path: join(SHOTS, 'clusters.png') });
  });

  it('relabels a cluster after a confirmation', async () => {
    await page.getByRole('link', { name: 'us-1' }).click();
    await page.getByRole('heading', { name: 'Cluster us-1' }).waitFor();
    await page.getByLabel('Labels of us-1').fill('region=us, tier=edge');
    await button('Save labels').click();
    const dialog = page.getByRole('dialog');
    assert.match(await dialog.innerText(), /region=us, tier=edge[\s\S]*deliveries may be added to or removed/);
    await confirmIn(page, 'Save the labels');
    await status('Saved the labels of us-1.');
    const labels = (await srv.api.call('GET', 'sys/cofre/clusters/us-1')).body.data.labels;
    assert.deepEqual(labels, { region: 'us', tier: 'edge' });
    await assertLabelled(page, 'a cluster page');
  });

  it('previews a placement by label, then publishes it to the eu clusters', async () => {
    await page.getByRole('link', { name: 'Placements', exact: true }).click();
    await page.getByLabel('New placement name').fill('shop-eu');
    await button('Create').click();
    await page.getByRole('heading', { name: 'New placement shop-eu' }).waitFor();
    await page.getByLabel('Delivery').selectOption('shop');
    await page.getByLabel('Clusters with the labels').fill('region=eu');
    assert.equal(await button('Publish').isDisabled(), true, 'publishing before a preview');
    await button('Preview the clusters').click();
    const preview = page.getByRole('table', { name: 'Clusters this placement would select' });
    await preview.waitFor();
    const rows = await preview.locator('tbody th').allInnerTexts();
    assert.deepEqual(rows, ['eu-1', 'eu-2']);
    await page.getByText('Gets shop now: eu-1, eu-2. Loses it: none.').waitFor();
    await assertLabelled(page, 'the placement editor');
    await page.screenshot({ path: join(SHOTS, 'placement.png'), fullPage: true });
    await button('Publish').click();
    assert.match(
      await page.getByRole('dialog').innerText(),
      /shop will be published to eu-1, eu-2\. Clusters that get it now: eu-1, eu-2\./,
    );
    await confirmIn(page, 'Publish');
    await status('Published shop with placement shop-eu.');
    for (const m of Object.values(members))
      await poll(
        `the Secrets in ${m.name}`,
        async () => (await secretExists(m, 'shop-db')) && secretExists(m, 'shop-env'),
      );
  });

  it('shows the lifecycle map: both clusters on revision 1, then on revision 2 after the KV secret rotates', async () => {
    await page.goto(`${srv.url}/ui/deliveries/shop/map`);
    await page.getByRole('heading', { name: 'Lifecycle of shop' }).waitFor();
    const table = page.getByRole('table', { name: 'Clusters holding shop' });
    const row = (name: string) => table.locator(`tr[data-cluster="${name}"]`);
    await row('eu-1')
      .filter({ hasText: 'rev 1: 1 pod' })
      .filter({ hasText: 'Rolled out' })
      .waitFor({ timeout: 60_000 });
    await row('eu-2').filter({ hasText: 'Applied (no pods to roll)' }).waitFor({ timeout: 30_000 });
    assert.match(await row('eu-2').innerText(), /revision 1 \(/);
    assert.match(await row('eu-1').innerText(), /in-pod delivery is not available/);
    assert.match(await row('eu-1').innerText(), /by shop-eu/);
    assert.equal(await table.locator('tr[data-cluster="us-1"]').count(), 0);
    await status('Revision 1 in namespace shop: rolled out on 2 of 2 clusters.');
    await assertLabelled(page, 'the lifecycle map');
    await page.screenshot({ path: join(SHOTS, 'lifecycle.png'), fullPage: true });

    await writeOk(srv.api, 'secret/data/shop/db', { data: { password: VALUES.rotated, user: VALUES.user } });
    await poll('revision 2', async () => (await deliveryRevision()) === 2);
    // No kubelet: eu-1's new pod never becomes ready, so the old one stays and the map shows both revisions.
    await row('eu-1')
      .filter({ hasText: 'rev 2: 1 pod' })
      .filter({ hasText: 'rev 1: 1 pod' })
      .waitFor({ timeout: 60_000 });
    assert.match(await row('eu-1').innerText(), /Rolling out: 1 of 2 pods on revision 2/);
    await row('eu-2').filter({ hasText: 'revision 2 (' }).waitFor({ timeout: 30_000 });
    await status('Revision 2 in namespace shop: rolled out on 1 of 2 clusters.');
    await page.screenshot({ path: join(SHOTS, 'lifecycle-rotated.png'), fullPage: true });
  });

  it('fits a narrow screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('table', { name: 'Clusters holding shop' }).waitFor();
    await assertFits(page, 'the lifecycle map');
    await page.screenshot({ path: join(SHOTS, 'lifecycle-narrow.png'), fullPage: true });
    for (const path of ['clusters', 'placements/shop-eu', 'deliveries/shop']) {
      await page.goto(`${srv.url}/ui/${path}`);
      await page.locator('main h1').waitFor();
      await page.getByRole('status').filter({ hasText: 'Loading' }).waitFor({ state: 'hidden' });
      await assertFits(page, `/ui/${path}`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('unpublishes after a confirmation that names the clusters, and the agents delete what they made', async () => {
    await page.goto(`${srv.url}/ui/placements/shop-eu`);
    await page.getByRole('table', { name: /Clusters shop-eu selects now/ }).waitFor();
    await button('Unpublish').click();
    const dialog = page.getByRole('dialog');
    assert.match(await dialog.innerText(), /shop is removed from: eu-1, eu-2/);
    // Escape cancels: nothing is deleted.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await srv.api.call('GET', 'sys/cofre/placements/shop-eu')).status, 200);
    await button('Unpublish').click();
    await confirmIn(page, 'Unpublish');
    await page.getByRole('heading', { name: 'Placements' }).waitFor();
    assert.equal((await srv.api.call('GET', 'sys/cofre/placements/shop-eu')).status, 404);
    for (const m of Object.values(members))
      await poll(
        `the Secrets gone from ${m.name}`,
        async () => !(await secretExists(m, 'shop-db')) && !(await secretExists(m, 'shop-env')),
      );
  });

  it('deregisters a cluster after a confirmation', async () => {
    await page.goto(`${srv.url}/ui/clusters/us-1`);
    await button('Deregister').click();
    assert.match(await page.getByRole('dialog').innerText(), /us-1 will be deregistered/);
    await confirmIn(page, 'Deregister the cluster');
    await page.getByRole('heading', { name: 'Clusters' }).waitFor();
    assert.equal((await srv.api.call('GET', 'sys/cofre/clusters/us-1')).status, 404);
  });

  it('kept every value out of the browser, and each bootstrap token out of all but the answer that made it', async () => {
    const all = await assertNoLeaks(recorded, Object.values(VALUES), () => false);
    assert.ok(all.length > 30, `only ${all.length} requests were recorded`);
    const tokens = [...Object.values(members).map((m) => m.bootstrapToken!), usToken];
    await assertNoLeaks(
      recorded,
      tokens,
      (e, where) =>
        where === 'response' && e.method === 'PUT' && /\/v1\/sys\/cofre\/clusters\/(eu-1|eu-2|us-1)$/.test(e.url),
    );
    for (const e of all) assert.ok(!e.url.includes(adminToken), `the token is in ${e.url}`);
    for (const m of Object.values(members)) {
      for (const value of Object.values(VALUES))
        assert.ok(!m.agent!.output().includes(value), `${m.name} logged a value`);
    }
  });
});
