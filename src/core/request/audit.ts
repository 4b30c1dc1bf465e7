import { AuditFailure } from '../audit-broker.js';
import type { AuditEvent } from '../audit-format.js';
import type { Response } from '../backend.js';
import type { Core } from '../core.js';
import { CofreError } from '../errors.js';

/** The audit entries of one request: the request's (before the handler runs) and the response's or failure's. */

export async function auditResponse(
  core: Core,
  event: AuditEvent,
  response: Response | undefined,
  /** PathRecord.auditedResponseData: what stands for the data of an answer already on record. */
  summarise?: (data: Record<string, unknown>) => Record<string, unknown>,
): Promise<void> {
  if (!core.audit.wanted) return;
  const raw = response?.rawBody;
  const data = response?.data;
  await core.audit.log({
    ...event,
    type: 'response',
    time: new Date(),
    responseData:
      data && summarise
        ? summarise(data)
        : (data ?? (raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : null)),
    responseAuth: response?.auth,
    responseWrapInfo: response?.wrapInfo,
    status: response?.status ?? (response ? 200 : 204),
  });
}

/**
 * Refusals and failures are on record too, with the request entry first if it was not yet written; an audit
 * failure itself cannot be.
 */
export async function auditFailure(core: Core, event: AuditEvent, err: unknown, requestLogged: boolean): Promise<void> {
  if (err instanceof AuditFailure || !core.audit.wanted) return;
  const known = err instanceof CofreError;
  if (!requestLogged) await core.audit.log(event);
  const failure = { status: known ? err.status : 500, error: known ? err.message : 'internal error' };
  await core.audit.log({ ...event, type: 'response', time: new Date(), ...failure });
}
