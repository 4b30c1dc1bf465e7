import type { Command } from 'commander';
import { apiCommand, clientFrom, outputFrom, parseInteger } from '../common.js';
import type { CommonFlags } from '../common.js';
import { silentExit, usageError } from '../errors.js';
import { promptSecret } from '../input.js';
import { stdio } from '../output.js';
import type { Output } from '../output.js';
import { registerGenerateRootCommand } from './operator-generate-root.js';
import { registerRekeyCommand } from './operator-rekey.js';
import { registerStepDownCommand } from './operator-step-down.js';
import { fetchSealStatus, printSealStatus, unwrap } from './status.js';
import type { SealStatus } from './status.js';

interface InitFlags extends CommonFlags {
  keyShares: number;
  keyThreshold: number;
  recoveryShares: number;
  recoveryThreshold: number;
  status?: boolean;
}

interface InitResponse {
  keys?: string[];
  keys_base64?: string[];
  recovery_keys?: string[];
  recovery_keys_base64?: string[];
  root_token?: string;
}

interface KeyStatus {
  term?: number;
  install_time?: string;
  encryptions?: number;
}

/** Vault prints the install time in Go's RFC822 layout, "02 Jan 06 15:04 MST". */
function rfc822(iso: string | undefined): string {
  const d = iso ? new Date(iso) : undefined;
  if (!d || Number.isNaN(d.getTime())) return iso ?? '';
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`;
}

function printKeyStatus(output: Output, status: KeyStatus): void {
  const rows: [string, string][] = [
    ['Key Term', String(status.term ?? '')],
    ['Install Time', rfc822(status.install_time)],
  ];
  if (status.encryptions !== undefined) rows.push(['Encryption Count', String(status.encryptions)]);
  output.rows(rows, status, false);
}

function initMessage(shares: number, threshold: number): string {
  return `
Cofre initialized with ${shares} key shares and a key threshold of ${threshold}. Please securely
distribute the key shares printed above. When Cofre is re-sealed, restarted, or stopped, you must
supply at least ${threshold} of these keys to unseal it before it can start servicing requests.

Cofre does not store the generated root key. Without at least ${threshold} keys to reconstruct
the root key, Cofre will remain permanently sealed!
`;
}

function recoveryMessage(shares: number, threshold: number): string {
  return `
Success! Cofre is initialized and unsealed by its seal.

Recovery key initialized with ${shares} key shares and a key threshold of ${threshold}. Please securely
distribute the key shares printed above. They do not unseal Cofre (the seal does) but authorise
sys/generate-root, sys/rekey, an unseal after sys/seal and a seal migration.
`;
}

export function registerOperatorCommands(program: Command): void {
  const operator = program.command('operator').description('Perform operator-specific tasks (init, unseal, seal, …)');

  apiCommand(operator, 'init', 'Initialize a new server: generate the unseal key shares and the root token')
    .option('--key-shares <n>', 'number of unseal key shares to generate', parseInteger, 5)
    .option('--key-threshold <n>', 'number of key shares required to unseal', parseInteger, 3)
    .option(
      '--recovery-shares <n>',
      'with an auto-unseal seal (PKCS#11): number of recovery key shares',
      parseInteger,
      5,
    )
    .option('--recovery-threshold <n>', 'with an auto-unseal seal: recovery key shares required', parseInteger, 3)
    .option('--status', 'only report whether the server is initialized (exit 0 yes, 2 no)')
    .action(async (flags: InitFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      if (flags.status) {
        const body = { initialized: Boolean((await fetchSealStatus(client)).initialized) };
        output.success(body.initialized ? 'Cofre is initialized' : 'Cofre is not initialized');
        if (output.json) output.printJson(body);
        if (!body.initialized) throw silentExit(2);
        return;
      }
      if (flags.keyShares < 1) throw usageError('-key-shares must be at least 1');
      if (flags.keyThreshold < 1 || flags.keyThreshold > flags.keyShares) {
        throw usageError('-key-threshold must be between 1 and -key-shares');
      }
      const body = {
        secret_shares: flags.keyShares,
        secret_threshold: flags.keyThreshold,
        recovery_shares: flags.recoveryShares,
        recovery_threshold: flags.recoveryThreshold,
      };
      const res = unwrap<InitResponse>(
        await client.request('PUT', 'sys/init', { body, token: null, what: 'initializing' }),
      );
      if (res.recovery_keys_base64) {
        const recovery = {
          unseal_keys_b64: [],
          unseal_keys_hex: [],
          recovery_keys_b64: res.recovery_keys_base64,
          recovery_keys_hex: res.recovery_keys ?? [],
          recovery_keys_shares: flags.recoveryShares,
          recovery_keys_threshold: flags.recoveryThreshold,
          root_token: res.root_token,
        };
        if (output.field) return output.printField(recovery[output.field as keyof typeof recovery]);
        if (output.json) return output.printJson(recovery);
        const lines = res.recovery_keys_base64.map((key, i) => `Recovery Key ${i + 1}: ${key}`);
        output.out([...lines, '', `Initial Root Token: ${res.root_token ?? ''}`].join('\n'));
        output.out(recoveryMessage(flags.recoveryShares, flags.recoveryThreshold));
        return;
      }
      const b64 = res.keys_base64 ?? res.keys ?? [];
      const json = {
        unseal_keys_b64: b64,
        unseal_keys_hex: res.keys ?? [],
        unseal_shares: flags.keyShares,
        unseal_threshold: flags.keyThreshold,
        root_token: res.root_token,
      };
      if (output.field) return output.printField(json[output.field as keyof typeof json]);
      if (output.json) return output.printJson(json);
      const lines = b64.map((key, i) => `Unseal Key ${i + 1}: ${key}`);
      output.out([...lines, '', `Initial Root Token: ${res.root_token ?? ''}`].join('\n'));
      output.out(initMessage(flags.keyShares, flags.keyThreshold));
    });

  apiCommand(operator, 'unseal [key]', 'Provide one unseal key share (prompted for, or read from stdin, if omitted)')
    .option('--reset', 'discard the key shares provided so far')
    .option('--migrate', 'a share of the seal the store is migrated away from (Shamir to PKCS#11 or back)')
    .action(async (key: string | undefined, flags: CommonFlags & { reset?: boolean; migrate?: boolean }) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      let body: Record<string, unknown>;
      if (flags.reset) {
        if (key) throw usageError('-reset takes no key');
        body = { reset: true };
      } else {
        const share = key && key !== '-' ? key : await promptSecret('Unseal Key (will be hidden): ');
        if (!share) throw usageError('Missing unseal key');
        body = { key: share, ...(flags.migrate ? { migrate: true } : {}) };
      }
      const res = await client.request('PUT', 'sys/unseal', { body, token: null, what: 'unsealing' });
      printSealStatus(output, unwrap<SealStatus>(res));
    });

  apiCommand(operator, 'seal', 'Seal the server: it stops serving until unsealed again', false).action(
    async (flags: CommonFlags) => {
      const client = clientFrom(flags);
      await client.request('PUT', 'sys/seal', { what: 'sealing' });
      stdio.stdout.write('Success! Cofre is sealed.\n');
    },
  );

  apiCommand(operator, 'key-status', 'Print the term and install time of the current encryption key').action(
    async (flags: CommonFlags) => {
      const client = clientFrom(flags);
      const res = await client.request('GET', 'sys/key-status', { what: 'reading key status' });
      printKeyStatus(outputFrom(flags), unwrap<KeyStatus>(res));
    },
  );

  apiCommand(operator, 'rotate', 'Rotate the encryption key protecting data in the storage backend').action(
    async (flags: CommonFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      await client.request('PUT', 'sys/rotate', { what: 'rotating key' });
      const res = await client.request('GET', 'sys/key-status', { what: 'reading key status' });
      output.success('Success! Rotated key\n\n'); // a blank line before the key status, as Vault
      printKeyStatus(output, unwrap<KeyStatus>(res));
    },
  );

  registerGenerateRootCommand(operator);
  registerRekeyCommand(operator);
  registerStepDownCommand(operator);
}
