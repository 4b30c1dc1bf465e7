import type { Field, PathRecord, Request, Response } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';

const leaseIdField: Field = { type: 'string', description: 'The lease ID (or give it in the URL).' };
const syncField: Field = {
  type: 'bool',
  default: true,
  description: 'Wait for the revocation to finish (true) or queue it and answer 202 (false).',
};

/** Vault takes the lease ID from the body or, on newer paths, the URL. */
function leaseIdOf(req: Request): string {
  const id = (req.params.url_lease_id ?? (req.data.lease_id as string | undefined) ?? '').trim();
  if (id === '') throw badRequest('lease_id must be specified');
  return id;
}

/** sys/leases/* (and Vault's older sys/renew, sys/revoke*): the expiration manager's API. */
export function leasePaths(core: Core): PathRecord[] {
  const leases = core.expiration;

  const renew = async (req: Request): Promise<Response> => {
    const lease = await leases.renew(leaseIdOf(req), (req.data.increment as number | undefined) ?? 0);
    return {
      data: null,
      lease: {
        leaseId: lease.leaseId,
        // What this renewal granted, rounded down: a holder is never told its lease lasts longer than it does. Taken
        // from the renewal's own time, not from now, so an uncapped renewal reports exactly the increment asked for
        // (holders take less than they asked as "capped by the max TTL" and replace the lease).
        ttl: Math.floor((lease.expireTime - lease.lastRenewalTime) / 1000),
        renewable: lease.renewable,
      },
    };
  };

  const revoke = async (req: Request): Promise<Response | undefined> => {
    const id = leaseIdOf(req);
    if (req.data.sync === false) {
      void leases.revoke(id).catch(() => undefined); // a failure is kept on the lease and retried
      return { status: 202, data: null };
    }
    await leases.revoke(id);
    return undefined;
  };

  /**
   * Under auth/, a prefix names the creation path of tokens (auth/token/create/<role>, auth/userpass/login/…):
   * tokens with an expiry are leases and go with the others; the tokens without one (root tokens) are found in
   * the token store, so that every token created there is revoked, as in Vault.
   */
  const revokeAll = async (prefix: string, force = false): Promise<void> => {
    await leases.revokePrefix(prefix, force);
    if (prefix.startsWith('auth/')) await core.tokens.revokeByPath(prefix);
  };

  const revokePrefix = (force: boolean) => async (req: Request) => {
    const prefix = req.params.prefix ?? '';
    if (prefix === '') throw badRequest('prefix must be specified');
    if (!force && req.data.sync === false) {
      void revokeAll(prefix).catch(() => undefined);
      return { status: 202, data: null };
    }
    await revokeAll(prefix, force);
    return undefined;
  };

  const renewRecord = (pattern: string): PathRecord => ({
    pattern,
    summary: 'Renews a lease: extends its TTL by increment seconds, up to its max TTL.',
    fields: {
      lease_id: leaseIdField,
      url_lease_id: leaseIdField,
      increment: { type: 'duration', description: 'Seconds (or a duration) to extend the lease by from now.' },
    },
    operations: { update: renew },
  });
  const revokeRecord = (pattern: string): PathRecord => ({
    pattern,
    summary: 'Revokes a lease: the secret is revoked at its source, then the lease is removed.',
    fields: { lease_id: leaseIdField, url_lease_id: leaseIdField, sync: syncField },
    operations: { update: revoke },
  });
  const prefixRecord = (pattern: string, force: boolean): PathRecord => ({
    pattern,
    sudo: true,
    summary: force
      ? 'Removes every lease under a prefix without revoking its secret (for secrets already gone).'
      : 'Revokes every lease under a prefix.',
    fields: { prefix: { type: 'string', description: 'The lease ID prefix.' }, ...(force ? {} : { sync: syncField }) },
    operations: { update: revokePrefix(force) },
  });

  return [
    {
      pattern: 'leases/lookup',
      storesNothing: true,
      summary: 'Looks up a lease: its times, TTL and any failed revocation attempts.',
      fields: { lease_id: leaseIdField },
      operations: { update: async (req) => ({ data: { ...(await leases.lookup(leaseIdOf(req))) } }) },
    },
    {
      pattern: 'leases/lookup/(?<prefix>.*)',
      sudo: true,
      summary: 'Lists lease IDs under a prefix.',
      fields: { prefix: { type: 'string', description: 'The lease ID prefix.' } },
      operations: {
        list: async (req) => {
          // None is 404, as every empty LIST (src/core/request/list-answer.ts).
          return { data: { keys: await leases.listPrefix(req.params.prefix ?? '') } };
        },
      },
    },
    renewRecord('leases/renew'),
    renewRecord('leases/renew/(?<url_lease_id>.+)'),
    renewRecord('renew'),
    renewRecord('renew/(?<url_lease_id>.+)'),
    revokeRecord('leases/revoke'),
    revokeRecord('leases/revoke/(?<url_lease_id>.+)'),
    revokeRecord('revoke'),
    revokeRecord('revoke/(?<url_lease_id>.+)'),
    prefixRecord('leases/revoke-prefix/(?<prefix>.+)', false),
    prefixRecord('revoke-prefix/(?<prefix>.+)', false),
    prefixRecord('leases/revoke-force/(?<prefix>.+)', true),
    prefixRecord('revoke-force/(?<prefix>.+)', true),
    {
      pattern: 'leases/tidy',
      summary: 'Removes index entries of leases that no longer exist.',
      operations: {
        update: async () => {
          const removed = await leases.tidy();
          return { status: 202, data: null, warnings: [`removed ${removed} stale lease index entries`] };
        },
      },
    },
  ];
}
