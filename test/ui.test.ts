/**
 * The web UI in a real browser (Debian's Chromium, headless, through playwright-core) against a real in-process
 * server serving the real build: sign in, write a secret, see its versions, reveal a value, a write with a stale
 * check-and-set refused and shown, a version destroyed after a confirmation, a policy with a mistake pointed at its
 * line, and a lease revoked. Every request and response the page makes is recorded: a secret value may appear
 * only in the requests that write it and the responses that read it, never in a URL, the console or storage.
 * Screenshots of the main pages go to docs/ui/ (the README shows them).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { ensureUiBuilt, launchChromium, type HeadlessBrowser } from './browser.js';
import { startServer, writeOk, type InProcessServer } from './support.js';
import {
  assertFits,
  assertLabelled as labelledOn,
  assertNoLeaks,
  buttonOn,
  confirmIn as confirmOn,
  recordedPage,
  type RecordedPage,
} from './ui-support.js';

const SHOTS = join(import.meta.dirname, '..', 'docs', 'ui');
const SECRET = 'app/config';
const DATA_PATH = `/v1/secret/data/${SECRET}`;
/** Every value written in this test: none may show up where it does not belong. */
const VALUES = {
  first: 'first-value-7f3a1c',
  second: 'second-value-9b2c4d',
  elsewhere: 'written-elsewhere-44d1e8',
  stale: 'stale-edit-5e6f02',
};
const PASSWORD = 'alice-password-81d2';

describe('the web UI in Chromium', () => {
  let srv: InProcessServer;
  let db: TestDatabase;
  let chromium: HeadlessBrowser;
  let recorded: RecordedPage;
  let context: BrowserContext;
  let page: Page;

  before(async () => {
    ensureUiBuilt();
    mkdirSync(SHOTS, { recursive: true });
    srv = await startServer({ ui: true });
    await writeOk(srv.api, 'sys/auth/userpass', { type: 'userpass' });
    await writeOk(srv.api, 'sys/policies/acl/admin', {
      policy: 'path "*" {\n  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]\n}\n',
    });
    await writeOk(srv.api, 'auth/userpass/users/alice', { password: PASSWORD, token_policies: 'admin' });
    await writeOk(srv.api, 'auth/userpass/users/bob', { password: 'bob-password', token_policies: 'default' });
    // A real PostgreSQL for a lease that can be renewed (a token's lease is renewed with the token, not here).
    db = await startPostgres();
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(srv.api, 'database/config/main', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres?sslmode=disable`,
      username: db.user,
      password: db.password,
      allowed_roles: '*',
    });
    await writeOk(srv.api, 'database/roles/app', {
      db_name: 'main',
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
      default_ttl: '10m',
      max_ttl: '1h',
    });
    chromium = await launchChromium();
    recorded = await recordedPage(chromium);
    ({ context, page } = recorded);
  });
  after(async () => {
    await context?.close();
    await chromium?.close();
    await srv?.stop();
    await db?.stop();
  });

  const button = (name: string) => buttonOn(page, name);
  const assertLabelled = (where: string) => labelledOn(page, where);
  const confirmIn = (name: string) => confirmOn(page, name);

  it('opens on the sign-in page at /ui/ (from /), shows a refused login, and signs in with userpass', async () => {
    await page.goto(`${srv.url}/`);
    assert.equal(new URL(page.url()).pathname, '/ui/');
    await page.getByRole('heading', { name: 'Sign in to Cofre' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'sign-in.png') });
    await assertLabelled('the sign-in page');
    await page.getByLabel('With a username and password').check();
    await page.getByLabel('Username', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('wrong password');
    await button('Sign in').click();
    const refusal = page.getByRole('alert');
    await refusal.waitFor();
    assert.match(await refusal.innerText(), /Sign-in failed[\s\S]*invalid username or password/i);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await button('Sign in').click();
    await page.getByText('Signed in as').waitFor();
    assert.match(await page.locator('header').innerText(), /userpass-alice/);
  });

  it('signs out, and signs in again with a token using the keyboard alone', async () => {
    await button('Sign out').click();
    await page.getByRole('heading', { name: 'Sign in to Cofre' }).waitFor();
    // The method choice comes first (a token is the default), the token field next in tab order; Enter submits.
    await page.getByLabel('With a token').focus();
    assert.equal(await page.getByLabel('With a token').isChecked(), true);
    await page.keyboard.press('Tab');
    await page.keyboard.type(srv.rootToken);
    await page.keyboard.press('Enter');
    await page.getByText('Signed in as').waitFor();
    assert.match(await page.locator('header').innerText(), /root/);
  });

  it('lists the KV mounts and opens secret/', async () => {
    await page.getByRole('link', { name: 'Secrets', exact: true }).click();
    const mounts = page.getByRole('table', { name: 'Key/value mounts' });
    await mounts.waitFor();
    assert.match(await mounts.innerText(), /secret\/\s+KV v2/);
    await page.screenshot({ path: join(SHOTS, 'mounts.png') });
    await assertLabelled('the mounts page');
    // Opening a page puts focus on its heading (a screen reader announces it); Tab goes on into the page.
    assert.deepEqual(
      await page.evaluate(() => [document.activeElement?.tagName, document.activeElement?.textContent]),
      ['H1', 'Secrets'],
    );
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'secret/');
    await page.getByRole('link', { name: 'secret/' }).click();
    await page.getByRole('heading', { name: 'secret/', exact: true }).waitFor();
  });

  it('writes a new secret, then a second version, and shows both in the history', async () => {
    await page.getByLabel('New secret in secret/').fill(SECRET);
    await button('Create').click();
    await button('Create it').click();
    await page.getByLabel('Key 1').fill('password');
    await page.getByLabel('Value 1').fill(VALUES.first);
    await button('Add a key').click();
    await page.getByLabel('Key 2').fill('user');
    await page.getByLabel('Value 2').fill('svc-app');
    await button('Save new version').click();
    await page.getByText(`Saved version 1 of ${SECRET}.`).waitFor();

    await button('Write a new version').click();
    // The form starts from version 1's values, masked.
    assert.equal(await page.getByLabel('Value 1').getAttribute('type'), 'password');
    assert.equal(await page.getByLabel('Value 1').inputValue(), VALUES.first);
    // In the field, not in the markup: a value attribute would put it in every DOM dump while the editor is open.
    assert.ok(!(await page.content()).includes(VALUES.first), 'a value being edited is in the page markup');
    await assertLabelled('the secret page with its editor open');
    await page.getByLabel('Value 1').fill(VALUES.second);
    await page.getByLabel('Show values while typing').check();
    assert.equal(await page.getByLabel('Value 1').inputValue(), VALUES.second, 'showing the values reset one');
    assert.ok(!(await page.content()).includes(VALUES.second), 'a typed value is in the page markup');
    await button('Save new version').click();
    await page.getByText(`Saved version 2 of ${SECRET}.`).waitFor();

    const history = page.getByRole('table', { name: /Versions of app\/config: current 2/ });
    await history.waitFor();
    const rows = history.locator('tbody tr');
    assert.equal(await rows.count(), 2);
    assert.match(await rows.nth(0).innerText(), /^2\s*current[\s\S]*live/);
    assert.match(await rows.nth(1).innerText(), /^1[\s\S]*live/);
  });

  it('masks every value until one is revealed, and reveals only that one', async () => {
    const values = page.getByRole('table', { name: /Keys and values/ });
    await values.waitFor();
    const before = await page.content();
    assert.ok(!before.includes(VALUES.second) && !before.includes('svc-app'), 'a value was on the page unrevealed');
    await button('Reveal password').click();
    await page.getByTestId('value-password').waitFor();
    assert.equal(await page.getByTestId('value-password').innerText(), VALUES.second);
    assert.ok(!(await values.innerText()).includes('svc-app'), 'revealing one key showed another');
    await page.screenshot({ path: join(SHOTS, 'secret.png'), fullPage: true });
    await button('Hide password').click();
    assert.ok(!(await page.content()).includes(VALUES.second));
  });

  it('refuses a write whose check-and-set is stale, says so plainly, and keeps the other write', async () => {
    await button('Write a new version').click();
    await page.getByLabel('Value 1').fill(VALUES.stale);
    // Someone else writes version 3 while the form is open (it started from version 2).
    await writeOk(srv.api, `secret/data/${SECRET}`, { data: { password: VALUES.elsewhere } });
    await button('Save new version').click();
    const conflict = page.getByRole('alert').filter({ hasText: 'Not saved' });
    await conflict.waitFor();
    const text = await conflict.innerText();
    assert.match(text, /someone changed this secret while you were editing/);
    assert.match(text, /You started from version 2; the latest is now version 3/);
    const stored = await srv.api.call('GET', `secret/data/${SECRET}`);
    assert.equal(stored.body.data.metadata.version, 3);
    assert.deepEqual(stored.body.data.data, { password: VALUES.elsewhere });
    await page.screenshot({ path: join(SHOTS, 'secret-conflict.png'), fullPage: true });
    await button('Discard my changes and show version 3').click();
    await page.getByRole('table', { name: /current 3/ }).waitFor();
  });

  it('patches one key, leaving the others as they are', async () => {
    await button('Change some keys').click();
    await page.getByLabel('Key 1').fill('user');
    await page.getByLabel('Value 1').fill('svc-patched');
    await button('Save changes').click();
    await page.getByText(/^Saved: the keys you changed are in a new version/).waitFor();
    await page.getByRole('table', { name: /current 4/ }).waitFor();
    const stored = await srv.api.call('GET', `secret/data/${SECRET}`);
    assert.deepEqual(stored.body.data.data, { password: VALUES.elsewhere, user: 'svc-patched' });
  });

  it('asks before destroying a version (Escape cancels), then destroys it', async () => {
    await button('Destroy version 1').click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(
      await dialog.innerText(),
      /Version 1 of app\/config will be destroyed: its values are erased for good/,
    );
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    let meta = await srv.api.call('GET', `secret/metadata/${SECRET}`);
    assert.equal(meta.body.data.versions['1'].destroyed, false, 'Escape destroyed the version');

    await button('Destroy version 1').click();
    await confirmIn('Destroy version 1 for good');
    await page.getByText('Version 1: destroyed.').waitFor();
    meta = await srv.api.call('GET', `secret/metadata/${SECRET}`);
    assert.equal(meta.body.data.versions['1'].destroyed, true);
    const row1 = page
      .getByRole('table', { name: /Versions of/ })
      .locator('tbody tr')
      .last();
    assert.match(await row1.innerText(), /^1\s[\s\S]*\sdestroyed\s/);

    await button('Delete version 2').click();
    await confirmIn('Delete version 2');
    await page.getByText('Version 2: deleted.').waitFor();
    await button('Undelete version 2').click();
    await confirmIn('Undelete version 2');
    await page.getByText('Version 2: undeleted.').waitFor();
    meta = await srv.api.call('GET', `secret/metadata/${SECRET}`);
    assert.equal(meta.body.data.versions['2'].deletion_time, '');
  });

  it('works on a KV v1 mount too: write, list, reveal, delete', async () => {
    await writeOk(srv.api, 'sys/mounts/legacy', { type: 'kv', options: { version: '1' } });
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Secrets' }).click();
    await page.getByRole('link', { name: 'legacy/' }).click();
    await page.getByText('KV version 1').waitFor();
    await page.getByLabel('New secret in legacy/').fill('team/token');
    await button('Create').click();
    await button('Create it').click();
    await page.getByLabel('Key 1').fill('api');
    await page.getByLabel('Value 1').fill('v1-value');
    await button('Save').click();
    await page.getByText('Saved team/token.').waitFor();
    assert.deepEqual((await srv.api.call('GET', 'legacy/team/token')).body.data, { api: 'v1-value' });
    assert.ok(!(await page.content()).includes('v1-value'), 'a KV v1 value was on the page unrevealed');
    await button('Reveal api').click();
    assert.equal(await page.getByTestId('value-api').innerText(), 'v1-value');
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'team' }).click();
    await page.getByRole('link', { name: /token/ }).waitFor();
    await page.getByRole('link', { name: /token/ }).click();
    await button('Delete this secret').click();
    assert.match(await page.getByRole('dialog').innerText(), /legacy\/team\/token will be deleted for good/);
    await confirmIn('Delete the secret');
    await page.getByRole('heading', { name: 'legacy/team/', exact: true }).waitFor();
    assert.equal((await srv.api.call('GET', 'legacy/team/token')).status, 404);
  });

  it('points at the line of a policy mistake the server reports, then saves the fixed policy', async () => {
    await page.getByRole('link', { name: 'Policies', exact: true }).click();
    await page.getByRole('link', { name: 'admin' }).waitFor();
    await page.getByLabel('New policy name').fill('ui-test');
    await button('Create').click();
    await page.getByText('A new policy: it is created when you save it.').waitFor();
    const broken = [
      '# app readers',
      'path "secret/data/app/*" {',
      '  capabilities = ["read"]',
      '}',
      '',
      'path "secret/metadata/app/*" {',
      '  capabilities = ["lst"]',
      '}',
    ];
    await page.getByLabel('Policy (HCL or JSON)').fill(broken.join('\n'));
    await button('Save policy').click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /unknown capability "lst" in path "secret\/metadata\/app\/\*".*line 6/);
    const pointer = page.locator('.error-line');
    assert.match(await pointer.innerText(), /Line 6: path "secret\/metadata\/app\/\*" \{/);
    assert.equal(await page.locator('.gutter li.bad').innerText(), '6');
    await button('Go to line 6').click();
    const selected = await page
      .getByLabel('Policy (HCL or JSON)')
      .evaluate((el: HTMLTextAreaElement) => el.value.slice(el.selectionStart, el.selectionEnd));
    assert.equal(selected, 'path "secret/metadata/app/*" {');
    await page.screenshot({ path: join(SHOTS, 'policy-error.png'), fullPage: true });
    await assertLabelled('the policy editor');

    await page.getByLabel('Policy (HCL or JSON)').fill(broken.join('\n').replace('"lst"', '"list"'));
    await button('Save policy').click();
    await page.getByText('Saved policy ui-test.').waitFor();
    const stored = await srv.api.call('GET', 'sys/policies/acl/ui-test');
    assert.match(stored.body.data.policy, /capabilities = \["list"\]/);
  });

  it('a crafted link cannot aim a page at another API path than the one it names', async () => {
    // "%2F" is decoded into the policy's name, "../../../sys/mounts/secret"; the browser would resolve the dots, and
    // the page's Delete went to DELETE /v1/sys/mounts/secret.
    const sent: string[] = [];
    const record = (req: { method(): string; url(): string }): void => {
      sent.push(`${req.method()} ${new URL(req.url()).pathname}`);
    };
    page.on('request', record);
    try {
      await page.goto(`${srv.url}/ui/policies/..%2F..%2F..%2Fsys%2Fmounts%2Fsecret`);
      const alert = page.getByRole('alert');
      await alert.waitFor();
      assert.match(await alert.innerText(), /"\.\." path segment/);
      for (const name of ['Delete policy', 'Save policy']) {
        const control = page.getByRole('button', { name, exact: true });
        if ((await control.count()) === 0) continue;
        await control.click();
        if ((await page.getByRole('dialog').count()) > 0) await confirmIn('Delete the policy').catch(() => undefined);
      }
    } finally {
      page.off('request', record);
    }
    assert.ok(!sent.some((r) => r.includes('/v1/sys/mounts')), sent.join('\n'));
    const mounts = await srv.api.call('GET', 'sys/mounts');
    assert.ok(mounts.body.data['secret/'], 'the KV mount is still there');
  });

  it('lists token leases by prefix (renewed with the token, not here) and revokes one after a confirmation', async () => {
    const login = await srv.api.call('POST', 'auth/userpass/login/bob', {
      token: '',
      body: { password: 'bob-password' },
    });
    assert.equal(login.status, 200, login.text);
    const bobToken: string = login.body.auth.client_token;
    // A reload keeps the session (the token is in this tab's session storage).
    await page.goto(`${srv.url}/ui/leases/auth/userpass/login/`);
    await page.getByRole('link', { name: 'bob/' }).click();
    const leases = page.getByRole('table', { name: /Leases under auth\/userpass\/login\/bob\// });
    await leases.waitFor();
    assert.equal(await leases.locator('tbody tr').count(), 1);
    assert.equal(await leases.getByRole('button', { name: /^Renew/ }).count(), 0);
    await leases.getByText('A token’s lease is renewed with the token.').waitFor();
    await leases.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog');
    assert.match(await dialog.innerText(), /Lease auth\/userpass\/login\/bob\/\S+ will be revoked/);
    await confirmIn('Revoke the lease');
    await page.getByText(/^Revoked lease auth\/userpass\/login\/bob\//).waitFor();
    await page.getByText('No leases under this prefix.').waitFor();
    const lookup = await srv.api.call('GET', 'auth/token/lookup-self', { token: bobToken });
    assert.equal(lookup.status, 403, 'the revoked login token still works');
  });

  it('renews a database credential’s lease, then revokes it: the PostgreSQL user is gone', async () => {
    const creds = await srv.api.call('GET', 'database/creds/app');
    assert.equal(creds.status, 200, creds.text);
    const username: string = creds.body.data.username;
    const leaseId: string = creds.body.lease_id;
    const roleExists = async () => (await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).length > 0;
    assert.ok(await roleExists());
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Leases' }).click();
    await page.getByRole('textbox', { name: 'Prefix' }).fill('database/creds/app');
    await button('List').click();
    const leases = page.getByRole('table', { name: 'Leases under database/creds/app/' });
    await leases.waitFor();
    await leases.getByRole('button', { name: /^Details/ }).click();
    await leases.getByText(/s left \(expires/).waitFor();
    const before = (await srv.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })).body.data;
    await new Promise((r) => setTimeout(r, 1100)); // a renewal a second later ends a second later
    const [renewed] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/sys/leases/renew'),
      leases.getByRole('button', { name: /^Renew/ }).click(),
    ]);
    assert.equal(renewed.status(), 200, await renewed.text());
    const after = (await srv.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })).body.data;
    assert.ok(
      Date.parse(after.expire_time) > Date.parse(before.expire_time),
      `${before.expire_time} → ${after.expire_time}`,
    );
    await page.screenshot({ path: join(SHOTS, 'leases.png'), fullPage: true });
    await assertLabelled('the leases page');
    await leases.getByRole('button', { name: 'Revoke' }).click();
    await confirmIn('Revoke the lease');
    await page.getByText(`Revoked lease ${leaseId}.`).waitFor();
    assert.equal(await roleExists(), false, 'the revoked credential’s PostgreSQL user still exists');
  });

  it('fits a narrow screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${srv.url}/ui/secrets/secret/${SECRET}`);
    await page.getByRole('table', { name: /Versions of/ }).waitFor();
    await assertFits(page, 'a secret on a 390px screen');
    await page.screenshot({ path: join(SHOTS, 'secret-narrow.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('kept every secret value out of URLs, the console, storage and every exchange but its own writes and reads', async () => {
    const values = Object.values(VALUES);
    const all = await assertNoLeaks(recorded, values, (e, where) => {
      const path = new URL(e.url).pathname;
      if (path !== DATA_PATH) return false;
      return where === 'request' ? e.method === 'POST' || e.method === 'PATCH' : e.method === 'GET';
    });
    assert.ok(all.length > 20, `only ${all.length} requests were recorded`);
    for (const e of all) {
      if (e.requestBody.includes(PASSWORD)) assert.equal(new URL(e.url).pathname, '/v1/auth/userpass/login/alice');
      assert.ok(!e.url.includes(srv.rootToken), `the token is in ${e.url}`);
    }
    assert.ok(
      !recorded.consoleLines.some((l) => l.includes(PASSWORD) || l.includes(srv.rootToken)),
      'a credential was logged',
    );
    // The values did travel where they should: the writes, and the reads made to reveal or edit.
    assert.ok(all.some((e) => e.method === 'GET' && new URL(e.url).pathname === DATA_PATH));
    assert.ok(all.some((e) => e.method === 'POST' && e.requestBody.includes(VALUES.stale)));
  });
});
