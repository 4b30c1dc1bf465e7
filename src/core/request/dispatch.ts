import type { Handler, Operation, PathRecord, Request, Response } from '../backend.js';
import { unsupportedOperation } from '../errors.js';
import { parseFields } from '../fields.js';
import { queryFields } from './route.js';

/**
 * Step 3 of a request: the engine's part. With the route found, the operation settled and the caller authorised,
 * it finds the path's handler for the operation (405 if none) and parses the fields against the path record
 * (400 on a bad one); `run` then calls the handler. The two are apart because the server writes the audit entry
 * and takes a use of the token in between: nothing runs unless the request is on record.
 *
 * The engines' test harness (src/engines/kv/test-harness.ts) dispatches through this same step, so what an
 * engine test sees is what a client of the server sees.
 */
export interface Dispatch {
  /** Calls the handler; the fields' warnings (unknown parameters) follow the handler's own in the response. */
  run(): Promise<Response | undefined>;
}

export function prepareDispatch(record: PathRecord, request: Request): Dispatch {
  const handler = handlerFor(record, request.operation);
  if (!handler) throw unsupportedOperation();
  const { operation } = request;
  const fields = parseFields(
    record.fields ?? {},
    {
      ...(operation === 'read' || operation === 'list' || operation === 'delete' ? queryFields(request.query) : {}),
      ...request.raw,
    },
    {
      rejectUnknown: record.rejectUnknownFields ?? false,
      freeForm: record.freeForm ?? false,
      applyDefaults: true,
      requireFields: operation === 'update' || operation === 'patch',
    },
  );
  request.data = fields.data;
  return {
    async run() {
      const response = await handler(request);
      if (fields.warnings.length > 0 && response)
        response.warnings = [...(response.warnings ?? []), ...fields.warnings];
      return response;
    },
  };
}

/** A path may declare only one of create and update; a write of either kind then goes to it. */
function handlerFor(record: PathRecord, operation: Operation): Handler | undefined {
  if (operation === 'create') return record.operations.create ?? record.operations.update;
  if (operation === 'update') return record.operations.update ?? record.operations.create;
  return record.operations[operation];
}
