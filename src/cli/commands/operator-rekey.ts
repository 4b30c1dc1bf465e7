import type { Command } from 'commander';
import type { VaultClient } from '../../client/client.js';
import { apiCommand, clientFrom, collectList, outputFrom, parseInteger } from '../common.js';
import type { CommonFlags } from '../common.js';
import { CliError, usageError } from '../errors.js';
import { promptSecret, readStdin } from '../input.js';
import type { Output } from '../output.js';

interface RekeyFlags extends CommonFlags {
  init?: boolean;
  cancel?: boolean;
  status?: boolean;
  verify?: boolean;
  keyShares: number;
  keyThreshold: number;
  nonce?: string;
  pgpKeys?: string[];
  backup?: boolean;
}

/** sys/rekey/init (Vault's RekeyStatusResponse) and sys/rekey/verify (RekeyVerificationStatusResponse). */
interface RekeyStatus {
  nonce?: string;
  started?: boolean;
  t?: number;
  n?: number;
  progress?: number;
  required?: number;
  verification_required?: boolean;
  verification_nonce?: string;
}

interface RekeyUpdate {
  nonce?: string;
  complete?: boolean;
  keys?: string[];
  keys_base64?: string[];
  verification_required?: boolean;
  verification_nonce?: string;
}

function printStatus(output: Output, s: RekeyStatus, verify: boolean): void {
  const rows: [string, string][] = verify
    ? [
        ['Started', String(Boolean(s.started))],
        ['New Shares', String(s.n ?? 0)],
        ['New Threshold', String(s.t ?? 0)],
        ['Verification Nonce', s.nonce ?? ''],
        ['Verification Progress', `${s.progress ?? 0}/${s.t ?? 0}`],
      ]
    : [
        ['Nonce', s.nonce ?? ''],
        ['Started', String(Boolean(s.started))],
        ['Rekey Progress', `${s.progress ?? 0}/${s.required ?? 0}`],
        ['New Shares', String(s.n ?? 0)],
        ['New Threshold', String(s.t ?? 0)],
        ['Verification Required', String(Boolean(s.verification_required))],
      ];
  if (!verify && s.verification_nonce) rows.push(['Verification Nonce', s.verification_nonce]);
  output.rows(rows, s);
}

function printNewKeys(output: Output, res: RekeyUpdate, shares: number, threshold: number): void {
  if (output.json) return output.printJson(res);
  const keys = res.keys_base64 ?? res.keys ?? [];
  output.out(
    ['', ...keys.map((key, i) => `Key ${i + 1}: ${key}`), '', `Operation nonce: ${res.nonce ?? ''}`].join('\n'),
  );
  if (res.verification_required) {
    output.out(
      `\nThe new key shares are NOT active yet: give ${threshold} of them to "cofre operator rekey -verify" ` +
        `(verification nonce ${res.verification_nonce ?? ''}). Until then the old unseal keys stay in use.`,
    );
    return;
  }
  output.out(
    `\nCofre unseal key rekeyed with ${shares} key shares and a key threshold of ${threshold}. Please securely\n` +
      'distribute the key shares printed above. The old unseal keys no longer work. When Cofre is re-sealed,\n' +
      `restarted, or stopped, you must supply at least ${threshold} of these keys to unseal it.`,
  );
}

const statusPath = (verify: boolean): string => (verify ? 'sys/rekey/verify' : 'sys/rekey/init');

async function readStatus(client: VaultClient, verify: boolean): Promise<RekeyStatus> {
  return (await client.request('GET', statusPath(verify), {
    token: null,
    what: 'reading rekey status',
  })) as RekeyStatus;
}

/** One key share (an old one, or with -verify a new one), from the argument, stdin ("-") or a prompt. */
async function provide(client: VaultClient, output: Output, key: string | undefined, flags: RekeyFlags) {
  const verify = Boolean(flags.verify);
  const current = await readStatus(client, verify);
  if (!current.started) {
    throw new CliError('No rekey is in progress. Start a rekey process by running "cofre operator rekey -init".');
  }
  let share: string;
  let nonce = flags.nonce ?? '';
  if (key === '-') share = await readStdin();
  else if (key) share = key;
  else {
    nonce = current.nonce ?? '';
    output.err(`Rekey operation nonce: ${nonce}`);
    share = await promptSecret('Unseal Key (will be hidden): ');
  }
  share = share.trim();
  if (!share) throw usageError('Missing unseal key');
  if (!nonce) throw new CliError('Missing nonce value: specify it via the -nonce flag');
  const path = verify ? 'sys/rekey/verify' : 'sys/rekey/update';
  const res = (await client.request('PUT', path, {
    body: { key: share, nonce },
    token: null,
    what: 'posting unseal key',
  })) as RekeyUpdate;
  if (!res.complete) return printStatus(output, res as RekeyStatus, verify);
  if (verify) {
    if (output.json) return output.printJson(res);
    return output.out(
      'Rekey verification successful. The rekey operation is complete and the new keys are now active.',
    );
  }
  const keys = res.keys_base64 ?? res.keys ?? [];
  printNewKeys(output, res, keys.length, current.t ?? 0);
}

/** `cofre operator rekey`: Vault's command for the unseal key shares (PGP keys and backups are refused). */
export function registerRekeyCommand(operator: Command): void {
  apiCommand(operator, 'rekey [key]', 'Generate new unseal key shares from a quorum of the current ones')
    .option('--init', 'start a rekey (with -key-shares, -key-threshold and optionally -verify)')
    .option('--cancel', 'cancel the rekey in progress (with -verify: restart only its verification)')
    .option('--status', 'print the status of the rekey (with -verify: of its verification)')
    .option('--verify', 'with -init, require verification of the new shares; otherwise act on the verification')
    .option('--key-shares <n>', 'number of new key shares', parseInteger, 5)
    .option('--key-threshold <n>', 'number of new key shares required to unseal', parseInteger, 3)
    .option('--nonce <nonce>', 'the nonce of the rekey (or verification), required with a key given as argument')
    .option('--pgp-keys <keys>', 'not supported: encrypt the new shares with PGP keys', collectList)
    .option('--backup', 'not supported: store a backup of PGP-encrypted shares')
    .action(async (key: string | undefined, flags: RekeyFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const verify = Boolean(flags.verify);
      if (flags.init) {
        if (flags.keyThreshold > flags.keyShares) throw usageError('-key-threshold must be at most -key-shares');
        const body = {
          secret_shares: flags.keyShares,
          secret_threshold: flags.keyThreshold,
          require_verification: verify,
          ...(flags.pgpKeys?.length ? { pgp_keys: flags.pgpKeys } : {}),
          ...(flags.backup ? { backup: true } : {}),
        };
        const res = await client.request('PUT', 'sys/rekey/init', { body, token: null, what: 'initializing rekey' });
        return printStatus(output, res as RekeyStatus, false);
      }
      if (flags.cancel) {
        await client.request('DELETE', statusPath(verify), { token: null, what: 'canceling rekey' });
        return output.out(
          verify ? 'Success! Restarted rekey verification' : 'Success! Canceled rekeying (if it was started)',
        );
      }
      if (flags.status) return printStatus(output, await readStatus(client, verify), verify);
      await provide(client, output, key, flags);
    });
}
