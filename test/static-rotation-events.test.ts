// A static role's rotation is a change on the change stream, at database/static-creds/<role> where its password
// is read, whether rotate-role or the schedule rotated it: against a real PostgreSQL (scripts/test-databases.ts)
// and the real server, through the client's ChangeStream (the operator's). The event is seen only by a token that
// may read that role's static-creds, and never carries the password.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { ChangeStream, type ChangeEvent } from '../src/client/events.js';
import { postgres as flavor } from './database-flavors.js';
import { poll } from './poll.js';
import { startServer, writeOk, type InProcessServer } from './support.js';

const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'admin-pw-e41b-do-not-leak';

describe('static-role rotations on the change stream', () => {
  let db: TestDatabase;
  let srv: InProcessServer;
  let stream: ChangeStream | undefined;
  const seen: ChangeEvent[] = [];

  before(async () => {
    db = await startPostgres();
    for (const sql of flavor.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    srv = await startServer();
    await writeOk(srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(srv.api, 'database/config/main', {
      plugin_name: flavor.plugin,
      connection_url: flavor.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    for (const name of ['a', 'b']) {
      for (const sql of flavor.createUser(`static_${name}`, `original-${name}`)) await db.query(sql);
      await writeOk(srv.api, `database/static-roles/${name}`, {
        db_name: 'main',
        username: `static_${name}`,
        rotation_period: '1h',
      });
    }
    // A token that may read role a's password and nothing else.
    await writeOk(srv.api, 'sys/policies/acl/see-a', {
      policy: 'path "database/static-creds/a" { capabilities = ["read"] }',
    });
    const token = (await writeOk(srv.api, 'auth/token/create', { policies: ['see-a'] })).body.auth
      .client_token as string;
    stream = new ChangeStream({
      address: srv.url,
      token: async () => token,
      onChange: (ev) => seen.push(ev),
      onReset: () => undefined,
    });
    await stream.ready;
  });

  after(async () => {
    stream?.close();
    await srv?.stop();
    await db?.stop();
  });

  it('rotate-role is an event at static-creds/<role>, for those who may read it, without the password', async () => {
    await writeOk(srv.api, 'database/rotate-role/b');
    await writeOk(srv.api, 'database/rotate-role/a');
    const ev = await poll('the event of role a', async () => seen.find((e) => e.path === 'database/static-creds/a'));
    assert.equal(ev.kind, 'write');
    // Role b's rotation was appended first; this token may not read it, so it never arrived.
    assert.deepEqual(
      seen.map((e) => e.path),
      ['database/static-creds/a'],
      'one event, of role a only (no rotate-role/ path of its own)',
    );
    const password = (await srv.api.call('GET', 'database/static-creds/a')).body.data.password as string;
    assert.ok(!JSON.stringify(seen).includes(password), 'no password in the event');
  });

  it("the schedule's rotation is an event too", async () => {
    const before = seen.length;
    await writeOk(srv.api, 'database/static-roles/a', { rotation_period: 5 });
    const ev = await poll(
      'a scheduled rotation of role a',
      async () => seen.slice(before).find((e) => e.path === 'database/static-creds/a'),
      15_000,
    );
    assert.equal(ev.kind, 'write');
    await writeOk(srv.api, 'database/static-roles/a', { rotation_period: '1h' });
  });
});
