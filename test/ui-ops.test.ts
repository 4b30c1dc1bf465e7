/**
 * The web UI's operations pages in a real browser (Debian's Chromium, headless, through playwright-core) against a
 * real in-process server and a real PostgreSQL: sign in with a JWT the test signs, configure a database connection
 * (a wrong password refused with the server's message and never echoed), create a role, get credentials (masked,
 * then revealed; they log in to PostgreSQL), revoke their lease from the leases page (the PostgreSQL user is gone),
 * rotate the root credentials after a confirmation, a static role, the audit view of a file device with its
 * filters, and sign-out revoking the token. Every request and response is recorded: a password, JWT or credential
 * may appear only in the one exchange that sends or reads it. Screenshots go to docs/ui/.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { type TestDatabase } from '../scripts/test-databases.js';
import { ensureUiBuilt, launchChromium, type HeadlessBrowser } from './browser.js';
import { canLogIn, postgres } from './database-flavors.js';
import { enableFileAudit, startServer, writeOk, type InProcessServer } from './support.js';
import { assertLabelled, assertNoLeaks, buttonOn, confirmIn, recordedPage, type RecordedPage } from './ui-support.js';

const SHOTS = join(import.meta.dirname, '..', 'docs', 'ui');
const ISSUER = 'https://idp.ui-ops.test';
const ADMIN = 'cofre_ui_admin';
// Random-looking values: the engine takes any 4-character piece of a password out of its messages.
const ADMIN_PASSWORD = 'Ua9x-Kq2m-4b7e19';
const WRONG_PASSWORD = 'Wz3r-Pv8n-c03d5a';
const STATIC_USER = 'ui_static_user';
const STATIC_INITIAL = 'Sj6t-Hd4q-9e2f70';

describe('the web UI’s database, audit and sign-in pages in Chromium', () => {
  let srv: InProcessServer;
  let db: TestDatabase;
  let chromium: HeadlessBrowser;
  let recorded: RecordedPage;
  let page: Page;
  let goodJwt = '';
  let strangerJwt = '';
  /** Credentials the UI got from the server (filled in as the test reads them from its responses). */
  const issued: { username: string; password: string; leaseId: string } = { username: '', password: '', leaseId: '' };
  let staticPassword = '';

  const button = (name: string) => buttonOn(page, name);
  const nav = (name: string) => page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name });
  const pageToken = () => page.evaluate(() => sessionStorage.getItem('cofre.token') ?? '');

  before(async () => {
    ensureUiBuilt();
    mkdirSync(SHOTS, { recursive: true });
    srv = await startServer({ ui: true });
    await enableFileAudit(srv.api, join(srv.dir, 'audit.log'));
    await writeOk(srv.api, 'sys/policies/acl/admin', {
      policy: 'path "*" {\n  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]\n}\n',
    });
    db = await postgres.start();
    for (const sql of postgres.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    await db.query(`CREATE ROLE "${STATIC_USER}" WITH LOGIN PASSWORD '${STATIC_INITIAL}'`);
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });

    // The JWT method with a key this test makes: one JWT signed with it, one with a key the server does not know.
    const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeOk(srv.api, 'sys/auth/jwt', { type: 'jwt' });
    await writeOk(srv.api, 'auth/jwt/config', {
      jwt_validation_pubkeys: [signer.publicKey.export({ type: 'spki', format: 'pem' })],
      bound_issuer: ISSUER,
    });
    await writeOk(srv.api, 'auth/jwt/role/ops', {
      role_type: 'jwt',
      bound_audiences: ['cofre'],
      user_claim: 'sub',
      token_policies: ['admin'],
      token_ttl: '1h',
    });
    const jwtOf = (key: typeof signer.privateKey) =>
      new SignJWT({ sub: 'ops-person' })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(ISSUER)
        .setAudience('cofre')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(key);
    goodJwt = await jwtOf(signer.privateKey);
    strangerJwt = await jwtOf(stranger.privateKey);

    chromium = await launchChromium();
    recorded = await recordedPage(chromium);
    page = recorded.page;
  });
  after(async () => {
    await recorded?.context.close();
    await chromium?.close();
    await srv?.stop();
    await db?.stop();
  });

  it('signs in with a JWT: one signed by an unknown key is refused with the server’s message, then one is let in', async () => {
    await page.goto(`${srv.url}/ui/`);
    await page.getByLabel('With a JWT (OIDC ID token)').check();
    await page.getByLabel('Role', { exact: true }).fill('ops');
    await page.getByLabel('JWT', { exact: true }).fill(strangerJwt);
    assert.equal(await page.getByLabel('Mount path').inputValue(), 'jwt');
    await assertLabelled(page, 'the JWT sign-in form');
    await button('Sign in').click();
    const refusal = page.getByRole('alert');
    await refusal.waitFor();
    const text = await refusal.innerText();
    assert.match(text, /Sign-in failed[\s\S]*(signature|verif)/i);
    assert.ok(!text.includes(strangerJwt), 'the refused JWT is echoed');
    await page.getByLabel('JWT', { exact: true }).fill(goodJwt);
    // What is typed in a secret field never becomes part of the page's HTML.
    assert.ok(!(await page.content()).includes(goodJwt), 'the JWT typed is part of the page’s HTML');
    await page.screenshot({ path: join(SHOTS, 'sign-in-jwt.png') });
    await button('Sign in').click();
    await page.getByText('Signed in as').waitFor();
    assert.match(await page.locator('header').innerText(), /admin/);
  });

  it('configures a connection: a wrong password shows the server’s error and is never echoed back', async () => {
    await nav('Databases').click();
    await page.getByRole('link', { name: 'database/' }).click();
    await page.getByRole('heading', { name: 'database/', exact: true }).waitFor();
    await assertLabelled(page, 'a database mount');
    await page.getByLabel('New connection name').fill('main');
    await page.getByRole('region', { name: 'Connections' }).getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Connection main' }).waitFor();
    await page.getByText('A new connection: it is created when you save it.').waitFor();
    await page.getByLabel('Connection URL').fill(postgres.connectionUrl(db));
    await page.getByLabel('Username', { exact: true }).fill(ADMIN);
    await page.getByLabel('Password', { exact: true }).fill(WRONG_PASSWORD);
    await page.getByLabel('Allowed roles').fill('*');
    await button('Save connection').click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /The server refused[\s\S]*password authentication failed/);
    // Typed in a password field that is not part of the page's HTML, and in no message.
    assert.ok(!(await page.content()).includes(WRONG_PASSWORD), 'the wrong password is in the page');
    assert.equal((await srv.api.call('GET', 'database/config/main')).status, 404, 'a refused connection was stored');

    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await button('Save connection').click();
    await page.getByText('Saved main.').waitFor();
    assert.equal(await page.getByLabel('Password', { exact: true }).inputValue(), '', 'the password stayed typed');
    await page.getByText('Stored and never shown. Type a new one to replace it').waitFor();
    const stored = await srv.api.call('GET', 'database/config/main');
    assert.equal(stored.body.data.connection_details.username, ADMIN);
    assert.ok(!stored.text.includes(ADMIN_PASSWORD));
    await assertLabelled(page, 'the connection page');
    await page.screenshot({ path: join(SHOTS, 'database-connection.png'), fullPage: true });

    await button('Verify and reset').click();
    await page.getByText("Connected: main's connection pool was opened again").waitFor();
    // The {{password}} placeholder reads back as written, so the URL can be edited and saved again.
    assert.equal(await page.getByLabel('Connection URL').inputValue(), postgres.connectionUrl(db));
  });

  it('shows a password written into a URL masked, and will not write the mask back', async () => {
    const literal = `postgresql://${ADMIN}:${ADMIN_PASSWORD}@${db.host}:${db.port}/postgres?sslmode=disable`;
    await writeOk(srv.api, 'database/config/literal', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: literal,
      verify_connection: false,
    });
    await page.goto(`${srv.url}/ui/database/database/connections/literal`);
    const url = page.getByLabel('Connection URL');
    await page.getByRole('heading', { name: 'Connection literal' }).waitFor();
    await page.getByText('Stored and never shown.').first().waitFor();
    assert.equal(await url.inputValue(), literal.replace(ADMIN_PASSWORD, '*****'));
    await url.fill((await url.inputValue()).replace('sslmode=disable', 'sslmode=prefer'));
    const sent: string[] = [];
    const record = (r: { url(): string }) => sent.push(r.url());
    page.on('request', record);
    await button('Save connection').click();
    assert.match(await page.getByRole('alert').innerText(), /still holds the masked password/);
    page.off('request', record);
    assert.deepEqual(sent, [], 'the masked URL was sent');
    const stored = await srv.api.call('DELETE', 'database/config/literal');
    assert.equal(stored.status, 204, stored.text);
  });

  it('creates a dynamic role with creation statements and TTLs', async () => {
    await page
      .getByRole('navigation', { name: 'Breadcrumb' })
      .getByRole('link', { name: 'database', exact: true })
      .click();
    await page.getByLabel('New dynamic role name').fill('app');
    await page.getByRole('region', { name: 'Dynamic roles' }).getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Dynamic role app' }).waitFor();
    await page.getByLabel('Connection').selectOption('main');
    await page.getByLabel('Creation statements').fill(postgres.creation.join('\n'));
    await page.getByLabel('Default TTL').fill('10m');
    await page.getByLabel('Maximum TTL').fill('1h');
    await button('Save role').click();
    await page.getByText('Saved app.').waitFor();
    const role = await srv.api.call('GET', 'database/roles/app');
    assert.equal(role.status, 200, role.text);
    assert.equal(role.body.data.default_ttl, 600);
    assert.equal(role.body.data.max_ttl, 3600);
    assert.match(role.body.data.creation_statements.join('\n'), /CREATE ROLE "\{\{name\}\}"[\s\S]*GRANT SELECT/);
    // The form reads back what was stored, in its own words.
    assert.equal(await page.getByLabel('Default TTL').inputValue(), '10m');
    await assertLabelled(page, 'the role page');
  });

  it('gets credentials, masked until revealed, that log in to PostgreSQL', async () => {
    const [answer] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/database/creds/app'),
      button('Get credentials').click(),
    ]);
    const body = await answer.json();
    Object.assign(issued, {
      username: body.data.username,
      password: body.data.password,
      leaseId: body.lease_id,
    });
    const table = page.getByRole('table', { name: 'Credentials (masked until revealed)' });
    await table.waitFor();
    const content = await page.content();
    assert.ok(!content.includes(issued.password) && !content.includes(issued.username), 'a credential was shown');
    assert.match(await page.locator('.credentials').innerText(), /10m \(until .*\), renewable/);
    assert.ok((await page.locator('.credentials').innerText()).includes(issued.leaseId));
    await page.screenshot({ path: join(SHOTS, 'database-creds.png'), fullPage: true });
    await button('Reveal password').click();
    assert.equal(await page.getByTestId('credential-password').innerText(), issued.password);
    assert.ok(!(await table.innerText()).includes(issued.username), 'revealing the password showed the username');
    await button('Reveal username').click();
    assert.equal(await page.getByTestId('credential-username').innerText(), issued.username);
    assert.equal(await canLogIn(postgres, db, issued.username, issued.password), true);
    await button('Hide password').click();
    assert.ok(!(await page.content()).includes(issued.password));
  });

  it('revokes that lease from the leases page: the PostgreSQL user is gone', async () => {
    await page.getByRole('link', { name: 'Renew or revoke this lease on the Leases page' }).click();
    const leases = page.getByRole('table', { name: 'Leases under database/creds/app/' });
    await leases.waitFor();
    await leases.getByRole('button', { name: 'Revoke' }).click();
    assert.match(await page.getByRole('dialog').innerText(), /will be revoked/);
    await confirmIn(page, 'Revoke the lease');
    await page.getByText(`Revoked lease ${issued.leaseId}.`).waitFor();
    assert.equal(await postgres.userExists(db, issued.username), false, 'the revoked user still exists');
    assert.equal(await canLogIn(postgres, db, issued.username, issued.password), false);
  });

  it('rotates the root credentials only after a confirmation that says what it does', async () => {
    await page.goto(`${srv.url}/ui/database/database/connections/main`);
    await button('Rotate the root credentials').click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(
      await dialog.innerText(),
      new RegExp(`change the password of ${ADMIN} on the database to a new one that only Cofre knows`),
    );
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await canLogIn(postgres, db, ADMIN, ADMIN_PASSWORD), true, 'Escape rotated the password');
    await button('Rotate the root credentials').click();
    await confirmIn(page, 'Rotate the password');
    await page.getByText(`Rotated: only Cofre knows the password of ${ADMIN} now.`).waitFor();
    assert.equal(await canLogIn(postgres, db, ADMIN, ADMIN_PASSWORD), false, 'the old root password still works');
    await button('Verify and reset').click();
    await page.getByText("Connected: main's connection pool").waitFor();
  });

  it('creates a static role (Cofre takes the password over) and shows its password masked', async () => {
    await page.goto(`${srv.url}/ui/database/database/static-roles/reports`);
    await page.getByRole('heading', { name: 'Static role reports' }).waitFor();
    await page.getByLabel('Connection').selectOption('main');
    await page.getByLabel('Database user').fill(STATIC_USER);
    await page.getByLabel('Rotation period').fill('1h');
    await button('Save static role').click();
    await page.getByText('Saved reports.').waitFor();
    assert.equal(await canLogIn(postgres, db, STATIC_USER, STATIC_INITIAL), false, 'the password was not taken over');
    const [answer] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/database/static-creds/reports'),
      button('Get credentials').click(),
    ]);
    staticPassword = (await answer.json()).data.password;
    await page.getByRole('table', { name: 'Credentials (masked until revealed)' }).waitFor();
    assert.ok(!(await page.content()).includes(staticPassword));
    assert.match(await page.locator('.credentials').innerText(), /Next rotation\s+in (59m|1h)/);
    await button('Reveal password').click();
    assert.equal(await page.getByTestId('credential-password').innerText(), staticPassword);
    assert.equal(await canLogIn(postgres, db, STATIC_USER, staticPassword), true);
    await assertLabelled(page, 'the static role page');
  });

  it('shows recent requests of the file audit device, filtered, with no value in clear', async () => {
    await nav('Audit').click();
    const devices = page.getByRole('table', { name: 'Audit devices' });
    await devices.waitFor();
    assert.match(await devices.innerText(), /file\/\s+file\s+\S*audit\.log/);
    await page.getByRole('table', { name: /requests, from the last \d+ entries of the log/ }).waitFor();
    const [more] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/sys/cofre/audit-log/file'),
      page.getByLabel('Entries to read').selectOption('500'),
    ]);
    assert.equal(new URL(more.url()).searchParams.get('limit'), '500');
    await page.getByLabel('Path contains').fill('database/config/main');
    await page.getByLabel('Operation').selectOption('create');
    await page.getByLabel('Status').selectOption('refused');
    const refused = page.getByRole('table', { name: /^1 of \d+ requests/ });
    await refused.waitFor();
    const row = await refused.locator('tbody tr').innerText();
    assert.match(row, /create\s+database\/config\/main\s+[\s\S]*password authentication failed[\s\S]*\s400\s/);
    // The fields sent are named; their values are not shown (they are HMAC'd in the log).
    assert.match(row, /connection_url, username[\s\S]*password/);
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Path contains').fill('database/creds/app');
    await page.getByLabel('Operation').selectOption('read');
    const reads = page.getByRole('table', { name: /^1 of \d+ requests/ });
    await reads.waitFor();
    assert.match(await reads.locator('tbody tr').innerText(), /read\s+database\/creds\/app\s+200/);
    await page.getByLabel('Path contains').fill('');
    await page.getByLabel('Operation').selectOption('');
    await page.getByLabel('Status').selectOption('refused');
    await assertLabelled(page, 'the audit page');
    await page.screenshot({ path: join(SHOTS, 'audit.png') });
    const content = await page.content();
    for (const value of [ADMIN_PASSWORD, WRONG_PASSWORD, issued.password, staticPassword, goodJwt]) {
      assert.ok(!content.includes(value), 'a value is on the audit page');
    }
  });

  it('fits a narrow screen (the audit table and a role page)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const route of ['audit', 'database/database/roles/app', 'database/database/connections/main']) {
      await page.goto(`${srv.url}/ui/${route}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${route} is ${overflow}px wider than a 390px screen`);
    }
    await page.screenshot({ path: join(SHOTS, 'database-narrow.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('signs out by revoking the token: it no longer works', async () => {
    const token = await pageToken();
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
    await button('Sign out').click();
    await page.getByText('Signed out. The token is revoked: it no longer works anywhere.').waitFor();
    assert.equal(await pageToken(), '');
    assert.equal((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status, 403);
  });

  it('asks before revoking a pasted token: forget only keeps it valid, revoke ends it', async () => {
    const mint = async () =>
      (await srv.api.call('POST', 'auth/token/create', { body: { policies: ['admin'] } })).body.auth.client_token;
    const works = async (token: string) =>
      (await srv.api.call('GET', 'auth/token/lookup-self', { token })).status === 200;
    const signInWith = async (token: string) => {
      await page.getByLabel('With a token').check();
      await page.getByLabel('Token', { exact: true }).fill(token);
      await button('Sign in').click();
      await page.getByText('Signed in as').waitFor();
    };
    const kept = await mint();
    await signInWith(kept);
    await button('Sign out').click();
    assert.match(await page.getByRole('dialog').innerText(), /revokes the token you signed in with/);
    await confirmIn(page, 'Only forget it here');
    await page.getByText('The token was only forgotten in this tab').waitFor();
    assert.equal(await works(kept), true);

    const ended = await mint();
    await signInWith(ended);
    await button('Sign out').click();
    await confirmIn(page, 'Revoke the token and sign out');
    await page.getByText('Signed out. The token is revoked').waitFor();
    assert.equal(await works(ended), false);
  });

  it('tells a token without sudo that the audit view is for administrators, with the server’s message', async () => {
    const token = (await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } })).body.auth
      .client_token;
    await page.getByLabel('With a token').check();
    await page.getByLabel('Token', { exact: true }).fill(token);
    await button('Sign in').click();
    await page.getByText('Signed in as').waitFor();
    await nav('Audit').click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /The audit devices could not be listed[\s\S]*permission denied/);
    await page.getByText('The audit view is for administrators').waitFor();
    assert.equal(await page.getByRole('table').count(), 0);
    await button('Sign out').click();
    await confirmIn(page, 'Only forget it here');
    await page.getByRole('heading', { name: 'Sign in to Cofre' }).waitFor();
  });

  it('kept every password, JWT and credential out of URLs, the console, storage and every other exchange', async () => {
    // Each value, and the only exchange whose request (sent) or response (read) may hold it.
    const allowed: { value: string; sent?: string; read?: string }[] = [
      { value: ADMIN_PASSWORD, sent: '/v1/database/config/main' },
      { value: WRONG_PASSWORD, sent: '/v1/database/config/main' },
      { value: goodJwt, sent: '/v1/auth/jwt/login' },
      { value: strangerJwt, sent: '/v1/auth/jwt/login' },
      { value: issued.password, read: '/v1/database/creds/app' },
      { value: staticPassword, read: '/v1/database/static-creds/reports' },
    ];
    const all = await assertNoLeaks(
      recorded,
      allowed.map((a) => a.value),
      (e, where, secret) => {
        const path = new URL(e.url).pathname;
        return allowed.some((a) => a.value === secret && path === (where === 'request' ? a.sent : a.read));
      },
    );
    assert.ok(all.length > 20, `only ${all.length} requests were recorded`);
    // The audit log was read back, and held HMACs only.
    assert.ok(all.some((e) => new URL(e.url).pathname === '/v1/sys/cofre/audit-log/file'));
  });
});
