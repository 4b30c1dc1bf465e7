// Rotations of database passwords on one node while another node changes, deletes or rotates the same connection or
// static role, on one PostgreSQL: the node-local order of a role's rotations and edits does not reach the other
// node, so each step commits on what is stored (src/engines/database/connections.ts, static-rotation.ts).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { canLogIn as canLogInAs, postgres as flavor } from './database-flavors.js';
import { tempDir } from './support.js';
import { startCluster, type Node, stopCluster } from './cluster-support.js';

/** The rotation statements wait this long before the ALTER: the window the other node's request lands in. */
const HOLD_S = 0.5;
const LAND_MS = 250;

describe('database rotations on two nodes sharing PostgreSQL', () => {
  let db: TestDatabase;
  const dir = tempDir('cluster-db-rotation');
  let nodes: Node[] = [];
  let n = 0;

  const ok = async (node: Node, method: string, path: string, body?: unknown) => {
    const res = await node.api.call(method, path, body === undefined ? {} : { body });
    assert.ok(res.status >= 200 && res.status < 300, `${method} ${path} on ${node.name}: ${res.text}`);
    return res;
  };
  const canLogIn = (user: string, password: string) => canLogInAs(flavor, db, user, password);

  /** A connection logging in as an administrator of its own, with slow root rotation statements. */
  const connection = async (extra: Record<string, unknown> = {}) => {
    const name = `conn${++n}`;
    const user = `cofre_adm_${n}`;
    const password = `adm-initial-${n}-9d8e7f`;
    for (const sql of flavor.setup(user, password).filter((s) => s.includes(user))) await db.query(sql);
    await ok(nodes[0]!, 'PUT', `database/config/${name}`, {
      plugin_name: flavor.plugin,
      connection_url: flavor.connectionUrl(db),
      username: user,
      password,
      allowed_roles: '*',
      root_rotation_statements: flavor.slowSetPassword(HOLD_S),
      ...extra,
    });
    await ok(nodes[0]!, 'PUT', `database/roles/${name}`, { db_name: name, creation_statements: flavor.creation });
    return { name, user, password };
  };
  /** The stored root password works on `node`: a pool opened anew there hands out a credential that logs in. */
  const works = async (node: Node, name: string) => {
    await ok(node, 'PUT', `database/reset/${name}`, {});
    const cred = await ok(node, 'GET', `database/creds/${name}`);
    assert.equal(await canLogIn(cred.body.data.username, cred.body.data.password), true);
    await ok(node, 'PUT', 'sys/leases/revoke', { lease_id: cred.body.lease_id });
  };
  /** A static role on a plain connection, whose rotations hold the database for HOLD_S. */
  const staticRole = async () => {
    const { name: conn } = await connection();
    const role = `static${n}`;
    const user = `cofre_static_${n}`;
    for (const sql of flavor.createUser(user, 'static-initial-pw')) await db.query(sql);
    await ok(nodes[0]!, 'PUT', `database/static-roles/${role}`, {
      db_name: conn,
      username: user,
      rotation_period: '1h',
      rotation_statements: flavor.slowSetPassword(HOLD_S),
    });
    return { role, user };
  };
  const staticPasswordWorks = async (role: string, user: string) => {
    for (const node of nodes) {
      const creds = await ok(node, 'GET', `database/static-creds/${role}`);
      assert.equal(await canLogIn(user, creds.body.data.password), true, `static-creds on ${node.name}`);
    }
  };

  before(async () => {
    db = await startPostgres();
    // The tables the dynamic roles grant on, and an administrator no test rotates.
    for (const sql of flavor.setup('cofre_adm_0', 'adm-initial-0-5c4b3a')) await db.query(sql);
    ({ nodes } = await startCluster(dir, ['d1', 'd2'], db.url));
    await ok(nodes[0]!, 'PUT', 'sys/mounts/database', { type: 'database' });
  });

  after(() => stopCluster(nodes, db, dir));

  it('rotate-root on one node, the connection deleted on the other meanwhile: it stays deleted', async () => {
    const [d1, d2] = nodes as [Node, Node];
    const conn = await connection();
    const rotating = d1.api.call('PUT', `database/rotate-root/${conn.name}`, { body: {} });
    await sleep(LAND_MS);
    await ok(d2, 'DELETE', `database/config/${conn.name}`);
    const res = await rotating;
    assert.equal(res.status, 404, res.text);
    for (const node of nodes) {
      assert.equal((await node.api.call('GET', `database/config/${conn.name}`)).status, 404, node.name);
    }
  });

  it('rotate-root on one node, the config changed on the other meanwhile: the change stays, the password works', async () => {
    const [d1, d2] = nodes as [Node, Node];
    const conn = await connection({ allowed_roles: ['before'] });
    const rotating = d1.api.call('PUT', `database/rotate-root/${conn.name}`, { body: {} });
    await sleep(LAND_MS);
    await ok(d2, 'PUT', `database/config/${conn.name}`, { allowed_roles: [conn.name], verify_connection: false });
    assert.equal((await rotating).status, 204);
    for (const node of nodes) {
      const config = await ok(node, 'GET', `database/config/${conn.name}`);
      assert.deepEqual(config.body.data.allowed_roles, [conn.name], node.name);
    }
    assert.equal(await canLogIn(conn.user, conn.password), false, 'the root password did change');
    await works(d2, conn.name);
    await works(d1, conn.name);
  });

  it("rotate-root on both nodes at once: both succeed and the stored password is the database's", async () => {
    const [d1, d2] = nodes as [Node, Node];
    const conn = await connection();
    const first = d1.api.call('PUT', `database/rotate-root/${conn.name}`, { body: {} });
    await sleep(LAND_MS);
    const second = d2.api.call('PUT', `database/rotate-root/${conn.name}`, { body: {} });
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.status, b.status], [204, 204], `${a.text} ${b.text}`);
    await works(d1, conn.name);
    await works(d2, conn.name);
  });

  it('rotate-role on one node, the static role changed on the other meanwhile: the change stays', async () => {
    const [d1, d2] = nodes as [Node, Node];
    const { role, user } = await staticRole();
    const rotating = d1.api.call('PUT', `database/rotate-role/${role}`, { body: {} });
    await sleep(LAND_MS);
    await ok(d2, 'PUT', `database/static-roles/${role}`, { rotation_period: '2h' });
    assert.equal((await rotating).status, 204);
    for (const node of nodes) {
      const read = await ok(node, 'GET', `database/static-roles/${role}`);
      assert.equal(read.body.data.rotation_period, 7200, node.name);
    }
    await staticPasswordWorks(role, user);
  });

  it('rotate-role on both nodes at once, and a static role deleted during a rotation stays deleted', async () => {
    const [d1, d2] = nodes as [Node, Node];
    const { role, user } = await staticRole();
    const first = d1.api.call('PUT', `database/rotate-role/${role}`, { body: {} });
    await sleep(LAND_MS);
    const [a, b] = await Promise.all([first, d2.api.call('PUT', `database/rotate-role/${role}`, { body: {} })]);
    assert.deepEqual([a.status, b.status], [204, 204], `${a.text} ${b.text}`);
    await staticPasswordWorks(role, user);

    const rotating = d1.api.call('PUT', `database/rotate-role/${role}`, { body: {} });
    await sleep(LAND_MS);
    await ok(d2, 'DELETE', `database/static-roles/${role}`);
    await rotating;
    for (const node of nodes) {
      assert.equal((await node.api.call('GET', `database/static-roles/${role}`)).status, 404, node.name);
    }
  });
});
