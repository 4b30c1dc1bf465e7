import type { Command } from 'commander';
import type { VaultClient } from '../../client/client.js';
import { apiCommand, clientFrom, outputFrom } from '../common.js';
import type { CommonFlags } from '../common.js';
import { silentExit } from '../errors.js';
import type { Output } from '../output.js';

/** The body of sys/seal-status (and of sys/unseal). */
export interface SealStatus {
  type?: string;
  initialized?: boolean;
  sealed?: boolean;
  t?: number;
  n?: number;
  progress?: number;
  nonce?: string;
  version?: string;
  build_date?: string;
  storage_type?: string;
  cluster_name?: string;
  cluster_id?: string;
  [key: string]: unknown;
}

interface Leader {
  ha_enabled?: boolean;
  is_self?: boolean;
  leader_address?: string;
}

/** Rows as Vault prints a seal status (`vault status`, `vault operator unseal`). */
export function sealStatusRows(s: SealStatus, leader?: Leader): [string, string][] {
  const rows: [string, string][] = [];
  const add = (key: string, value: unknown): void => {
    if (value !== undefined && value !== null) rows.push([key, String(value)]);
  };
  add('Seal Type', s.type);
  // An auto seal (PKCS#11) hands out Shamir recovery keys instead of unseal keys, and Vault says so.
  if (s.recovery_seal === true) add('Recovery Seal Type', 'shamir');
  add('Initialized', s.initialized);
  add('Sealed', s.sealed);
  add(s.recovery_seal === true ? 'Total Recovery Shares' : 'Total Shares', s.n);
  add('Threshold', s.t);
  if (s.migration === true) add('Seal Migration in Progress', true);
  if (s.sealed) {
    rows.push(['Unseal Progress', `${s.progress ?? 0}/${s.t ?? 0}`]);
    rows.push(['Unseal Nonce', s.nonce ?? '']);
  }
  add('Version', s.version);
  add('Build Date', s.build_date);
  add('Storage Type', s.storage_type);
  if (s.cluster_name && s.cluster_id) {
    add('Cluster Name', s.cluster_name);
    add('Cluster ID', s.cluster_id);
  }
  add('HA Enabled', leader ? Boolean(leader.ha_enabled) : undefined);
  if (leader?.ha_enabled) {
    add('HA Mode', leader.is_self ? 'active' : 'standby');
    add('Active Node Address', leader.leader_address);
  }
  return rows;
}

export function printSealStatus(output: Output, status: SealStatus, leader?: Leader): void {
  const json = leader ? { ...status, ha_enabled: Boolean(leader.ha_enabled) } : status;
  output.rows(sealStatusRows(status, leader), json);
}

export async function fetchSealStatus(client: VaultClient): Promise<SealStatus> {
  const body = await client.request('GET', 'sys/seal-status', { token: null, what: 'checking seal status' });
  return unwrap<SealStatus>(body);
}

/** Some endpoints answer a bare object, others the envelope with `data`; accept both. */
export function unwrap<T>(body: unknown): T {
  const obj = (body ?? {}) as Record<string, unknown>;
  const data = obj.data;
  return (data && typeof data === 'object' && !Array.isArray(data) ? data : obj) as T;
}

export function registerStatusCommand(program: Command): void {
  apiCommand(program, 'status', 'Print the seal and HA status of the server (exit code 2 when sealed)')
    .addHelpText(
      'after',
      '\nExit codes: 0 unsealed, 2 sealed, 1 error (e.g. the server cannot be reached).\n\nExample:\n  $ cofre status',
    )
    .action(async (flags: CommonFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const status = await fetchSealStatus(client);
      let leader: Leader | undefined;
      if (!status.sealed) {
        try {
          leader = unwrap<Leader>(await client.request('GET', 'sys/leader', { token: null }));
        } catch {
          leader = undefined; // HA information is optional.
        }
      }
      printSealStatus(output, status, leader);
      if (status.sealed) throw silentExit(2);
    });
}
