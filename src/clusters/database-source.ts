import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '../core/audit-format.js';
import type { Request } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { badRequest } from '../core/errors.js';
import { resolveTtl } from '../core/expiration.js';
import { auditFailure, auditResponse } from '../core/request/audit.js';
import { prepareDispatch } from '../core/request/dispatch.js';
import { completeResponse } from '../core/request/finish.js';
import { route } from '../core/request/route.js';
import type { DatabaseSource } from './definitions.js';

/** One cluster's credential of a database source: the fields sealed into its bundles, and its lease (unix ms). */
export interface IssuedCredential {
  data: Record<string, string>;
  lease: { leaseId: string; issueTime: number; expireTime: number; maxExpireTime: number };
}

/**
 * Issues a credential of `<mount>/creds/<role>` for one cluster's delivery: the database engine's own creds
 * handler, then the request handler's own lease step (`completeResponse`; a request without a token makes a lease
 * no token owns, so no token's revocation takes it: the pipeline holds it, see credential-keeper.ts), and an audit
 * entry for the request and its answer, whose values the audit broker HMACs as every other answer's. The request
 * names the cluster and delivery it was made for.
 */
export async function issueCredential(
  core: Core,
  source: DatabaseSource,
  forWhom: { cluster: string; delivery: string },
): Promise<IssuedCredential> {
  const path = `${source.mount}/creds/${source.role}`;
  await core.caughtUp();
  const { route: found } = route(core, path);
  if (!found || found.mounted.entry.type !== 'database') {
    throw badRequest(`database role "${source.mount}/${source.role}": no database mount at "${source.mount}/"`);
  }
  const request: Request = {
    operation: 'read',
    path: found.relative,
    params: found.params,
    data: {},
    raw: {},
    query: {},
    storage: found.mounted.storage,
    caller: undefined,
    mountPoint: found.mounted.prefix,
    requestId: randomUUID(),
    remoteAddress: '',
  };
  const event: AuditEvent = {
    time: new Date(),
    type: 'request',
    requestId: request.requestId,
    operation: 'read',
    path,
    mountType: found.mounted.entry.type,
    remoteAddress: '',
    clientToken: undefined,
    caller: undefined,
    requestData: { cofre_cluster: forWhom.cluster, cofre_delivery: forWhom.delivery },
    error: '',
  };
  let logged = false;
  try {
    const dispatch = prepareDispatch(found.record, request);
    await core.audit.log(event);
    logged = true;
    const response = await dispatch.run();
    const secret = response?.secret;
    if (!response || !secret || !response.data) throw new Error(`${path} answered no credential`);
    // The request handler's own step: the lease, or the credential revoked at once if it cannot be stored.
    await completeResponse(core, found.mounted, request, response);
    const leaseId = response.lease!.leaseId;
    let lease: IssuedCredential['lease'];
    try {
      // A credential whose answer cannot go on record is not handed out: it goes at once.
      await auditResponse(core, event, response);
      // The times as the expiration manager recorded them; its max TTL is counted from the issue time.
      const recorded = await core.expiration.lookup(leaseId);
      const issueTime = Date.parse(recorded.issue_time);
      const { maxTtl } = resolveTtl(secret, found.mounted.entry.config);
      const expireTime = Date.parse(recorded.expire_time ?? recorded.issue_time);
      lease = { leaseId, issueTime, expireTime, maxExpireTime: issueTime + maxTtl * 1000 };
    } catch (err) {
      await core.expiration.revoke(leaseId).catch(() => undefined);
      throw err;
    }
    const data = Object.fromEntries(
      Object.entries(response.data).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
    return { data, lease };
  } catch (err) {
    await auditFailure(core, event, err, logged).catch(() => undefined);
    throw err;
  }
}
