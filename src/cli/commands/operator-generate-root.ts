import { randomInt } from 'node:crypto';
import type { Command } from 'commander';
import type { VaultClient } from '../../client/client.js';
import { apiCommand, clientFrom, outputFrom } from '../common.js';
import type { CommonFlags } from '../common.js';
import { CliError, usageError } from '../errors.js';
import { promptSecret, readStdin } from '../input.js';
import type { Output } from '../output.js';

interface GenerateRootFlags extends CommonFlags {
  init?: boolean;
  cancel?: boolean;
  status?: boolean;
  decode?: string;
  otp?: string;
  nonce?: string;
  pgpKey?: string;
  generateOtp?: boolean;
}

/** sys/generate-root/attempt and /update answer Vault's GenerateRootStatusResponse. */
interface GenerateRootStatus {
  nonce?: string;
  started?: boolean;
  progress?: number;
  required?: number;
  complete?: boolean;
  encoded_token?: string;
  encoded_root_token?: string;
  pgp_fingerprint?: string;
  otp?: string;
  otp_length?: number;
}

/** Vault's table: no header, these rows in this order; the OTP comes with a warning to keep it. */
function printStatus(output: Output, s: GenerateRootStatus): void {
  const rows: [string, string][] = [
    ['Nonce', s.nonce ?? ''],
    ['Started', String(Boolean(s.started))],
    ['Progress', `${s.progress ?? 0}/${s.required ?? 0}`],
    ['Complete', String(Boolean(s.complete))],
  ];
  if (s.pgp_fingerprint) rows.push(['PGP Fingerprint', s.pgp_fingerprint]);
  if (s.encoded_token) rows.push(['Encoded Token', s.encoded_token]);
  else if (s.encoded_root_token) rows.push(['Encoded Root Token', s.encoded_root_token]);
  if (s.otp) {
    if (!output.json) {
      output.err(
        'WARNING! A One-Time-Password has been generated for you and is shown in the OTP field. You will need ' +
          'this value to decode the resulting root token, so keep it safe.',
      );
    }
    rows.push(['OTP', s.otp]);
  }
  if (s.otp_length) rows.push(['OTP Length', String(s.otp_length)]);
  output.rows(rows, s, false);
}

/** The root token from `-decode`: base64 (unpadded) of token XOR otp, byte for byte, as Vault's roottoken.DecodeToken. */
export function decodeRootToken(encoded: string, otp: string): string {
  const bytes = Buffer.from(encoded, 'base64');
  const pad = Buffer.from(otp, 'utf8');
  if (bytes.length === 0 || bytes.length !== pad.length) {
    throw new CliError('Error xoring token: the encoded token and the OTP differ in length');
  }
  return Buffer.from(bytes.map((b, i) => b ^ pad[i]!)).toString('utf8');
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** An OTP for `-init -otp=...`: base62 of the length the server asks for (randomInt has no modulo bias). */
function generateOtp(length: number): string {
  let otp = '';
  for (let i = 0; i < length; i++) otp += BASE62[randomInt(BASE62.length)];
  return otp;
}

const status = async (client: VaultClient): Promise<GenerateRootStatus> =>
  (await client.request('GET', 'sys/generate-root/attempt', {
    token: null,
    what: 'getting root generation status',
  })) as GenerateRootStatus;

/** One key share: from the argument, stdin ("-") or a prompt (which takes the nonce from the status, as Vault). */
async function provide(client: VaultClient, output: Output, key: string | undefined, flags: GenerateRootFlags) {
  const current = await status(client);
  if (!current.started) {
    throw new CliError(
      'No root generation is in progress. Start a root generation by running "cofre operator generate-root -init".',
    );
  }
  let share: string;
  let nonce = flags.nonce ?? '';
  if (key === '-') share = await readStdin();
  else if (key) share = key;
  else {
    nonce = current.nonce ?? '';
    output.err(`Operation nonce: ${nonce}`);
    share = await promptSecret('Unseal Key (will be hidden): ');
  }
  share = share.trim();
  if (!share) throw usageError('Missing unseal key');
  if (!nonce) throw new CliError('Missing nonce value: specify it via the -nonce flag');
  const body = { key: share, nonce };
  const res = await client.request('PUT', 'sys/generate-root/update', {
    body,
    token: null,
    what: 'posting unseal key',
  });
  printStatus(output, res as GenerateRootStatus);
}

/** `cofre operator generate-root`: Vault's command, OTP flow only (PGP keys are refused). */
export function registerGenerateRootCommand(operator: Command): void {
  apiCommand(operator, 'generate-root [key]', 'Generate a new root token by combining a quorum of unseal key shares')
    .option('--init', 'start a root token generation (the server generates the OTP and prints it once)')
    .option('--cancel', 'cancel the root token generation in progress')
    .option('--status', 'print the status of the current attempt without providing a key')
    .option('--decode <encoded>', 'decode an encoded root token with -otp and print it')
    .option('--otp <otp>', 'the OTP to decode with (-decode) or, with -init, one of your own')
    .option('--nonce <nonce>', 'the nonce of the attempt, required with each key share given as an argument')
    .option('--pgp-key <key>', 'not supported: encrypt the root token with a PGP key')
    .option(
      '--generate-otp',
      'print an OTP of the length the server expects, for -init -otp (optional: -init makes one)',
    )
    .action(async (key: string | undefined, flags: GenerateRootFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      if (flags.generateOtp) {
        const length = (await status(client)).otp_length ?? 0;
        if (!length) throw new CliError('the server did not say how long an OTP must be (otp_length)');
        const otp = generateOtp(length);
        if (output.json) return output.printJson({ otp, otp_length: otp.length });
        return output.out(otp);
      }
      if (flags.decode !== undefined) {
        if (!flags.otp) throw new CliError('Missing otp: use -otp to supply it');
        const encoded = flags.decode === '-' ? (await readStdin()).trim() : flags.decode;
        const token = decodeRootToken(encoded, flags.otp);
        if (output.json) return output.printJson({ token });
        return output.out(token);
      }
      if (flags.cancel) {
        await client.request('DELETE', 'sys/generate-root/attempt', { token: null, what: 'canceling root generation' });
        return output.out('Success! Root token generation canceled (if it was started)');
      }
      if (flags.init) {
        if (flags.otp && flags.pgpKey) throw usageError('cannot specify both -otp and -pgp-key');
        const body = { ...(flags.otp ? { otp: flags.otp } : {}), ...(flags.pgpKey ? { pgp_key: flags.pgpKey } : {}) };
        const res = await client.request('PUT', 'sys/generate-root/attempt', {
          body,
          token: null,
          what: 'initializing root generation',
        });
        return printStatus(output, res as GenerateRootStatus);
      }
      if (flags.status) return printStatus(output, await status(client));
      await provide(client, output, key, flags);
    });
}
