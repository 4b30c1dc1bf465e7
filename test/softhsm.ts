import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's softhsm2 package: the PKCS#11 module and the tool that initialises tokens. */
export const SOFTHSM_LIB = '/usr/lib/softhsm/libsofthsm2.so';

/**
 * A SoftHSM2 token of the test's own: its configuration file and token directory live in `dir`, so nothing is
 * shared with other tests or the machine. Processes see it through SOFTHSM2_CONF.
 */
export function initSoftHsmToken(
  dir: string,
  label: string,
  pin: string,
  soPin: string,
): { env: { SOFTHSM2_CONF: string } } {
  if (!existsSync(SOFTHSM_LIB)) {
    throw new Error(`${SOFTHSM_LIB} is missing: install Debian's softhsm2 package (.ci/run does)`);
  }
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf };
  const init = spawnSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin],
    { env: { ...process.env, ...env }, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr}${init.stdout}`);
  return { env };
}
