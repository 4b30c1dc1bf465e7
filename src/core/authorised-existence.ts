import type { Request } from './backend.js';
import { permissionDenied } from './errors.js';

/**
 * A write is authorised as a create or an update by whether its object existed when the request was checked (the
 * path's `exists`); the write itself runs later. When the object was deleted or created in between, the write does
 * the other one, which the token must then be allowed too: a token that may only update must not create the object
 * (a user changing its own password must not make itself again after an operator deleted it), nor one that may only
 * create change it (Vault lets both through). Refused as the request would be, sent a moment later. Called with what
 * the write found at the moment it commits on (under a lock, or with a check in its commit).
 */
export async function assertExistenceAsAuthorised(req: Request, exists: boolean): Promise<void> {
  const doing = req.operation === 'update' && !exists ? 'create' : req.operation === 'create' && exists ? 'update' : '';
  if (doing === '' || !req.mayAlso || (await req.mayAlso(doing))) return;
  throw permissionDenied();
}
