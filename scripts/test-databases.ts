// Real database servers for tests (DESIGN.md "Test environment": never a fake). Each call starts its own server
// in a temporary directory on a free loopback port; call stop() in an after() hook.
//
//   import { startPostgres, startMariadb } from '../scripts/test-databases.js';
//   const pg = await startPostgres();   // or the server PGHOST/PGPORT/PGUSER/PGPASSWORD point at
//   await pg.query('SELECT rolname FROM pg_roles WHERE rolname = $1', [name]);
export { startMariadb } from './test-databases-mariadb.js';
export type { TestDatabase } from './test-databases-process.js';
export { postgresBinDir, startPostgres } from './test-databases-postgres.js';
