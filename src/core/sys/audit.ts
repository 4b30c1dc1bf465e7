import type { PathRecord, Request } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';
import { setOwn } from '../own-keys.js';

function stringOptions(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw badRequest(`audit option "${k}" must be a string`);
    }
    setOwn(out, k, String(v));
  }
  return out;
}

const DEFAULT_ENTRIES = 100;
const MAX_ENTRIES = 500;

/**
 * sys/audit (list, enable, disable) and sys/audit-hash, as in Vault; all of them need sudo. And Cofre's
 * sys/cofre/audit-log, which reads a file device's last entries back for an administrator (the web UI's audit page).
 */
export function auditPaths(core: Core): PathRecord[] {
  const path = (req: Request): string => req.params.path ?? '';
  return [
    {
      pattern: 'audit',
      summary: 'Lists the enabled audit devices.',
      sudo: true,
      operations: {
        read: async () => {
          const data: Record<string, unknown> = {};
          for (const e of core.audit.list()) {
            const options = Object.keys(e.options).length > 0 ? e.options : null;
            data[e.path] = { type: e.type, description: e.description, options, local: e.local, path: e.path };
          }
          return { data, mergeDataToTop: true };
        },
      },
    },
    {
      pattern: 'audit/(?<path>.+)',
      summary: 'Enables or disables an audit device.',
      sudo: true,
      rejectUnknownFields: true,
      fields: {
        path: { type: 'string', description: 'Where the device is enabled.' },
        type: { type: 'string', description: 'Device type: file or socket.' },
        description: { type: 'string', description: 'A human-friendly description.' },
        options: { type: 'map', description: 'Device options: file_path for file; address, socket_type for socket.' },
        local: { type: 'bool', description: 'Accepted for compatibility.' },
      },
      operations: {
        update: async (req) => {
          if (typeof req.data.type !== 'string' || req.data.type === '')
            throw badRequest('missing required field "type"');
          await core.audit.enable(
            path(req),
            req.data.type,
            (req.data.description as string | undefined) ?? '',
            stringOptions(req.data.options),
            (req.data.local as boolean | undefined) ?? false,
          );
          return undefined;
        },
        delete: async (req) => {
          await core.audit.disable(path(req));
          return undefined;
        },
      },
    },
    {
      // Cofre's own: Vault has no way to read a device back. Sudo, as everything else about audit devices.
      pattern: 'cofre/audit-log/(?<path>.+)',
      summary: "Reads a file audit device's last entries back, newest first, every value HMAC'd as on disk.",
      sudo: true,
      rejectUnknownFields: true,
      // The lines answered are the log's own: the response entry records how many, not the lines again.
      auditedResponseData: (data) => ({
        entries_returned: Array.isArray(data.entries) ? data.entries.length : 0,
        truncated: data.truncated,
      }),
      fields: {
        path: { type: 'string', description: 'The audit device (a file device writing to a file).' },
        limit: {
          type: 'int',
          default: DEFAULT_ENTRIES,
          description: `How many entries (lines) to read, 1 to ${MAX_ENTRIES}; at most the last MiB of the file.`,
        },
      },
      operations: {
        read: async (req) => {
          const limit = req.data.limit as number;
          if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ENTRIES) {
            throw badRequest(`"limit" must be a whole number from 1 to ${MAX_ENTRIES}`);
          }
          const { type, entries, truncated } = await core.audit.recent(path(req), limit);
          return { data: { type, entries, truncated } };
        },
      },
    },
    {
      pattern: 'audit-hash/(?<path>.+)',
      storesNothing: true,
      summary: "Hashes a value with an audit device's salt, to find it in the log.",
      fields: {
        path: { type: 'string', description: 'The audit device.' },
        input: { type: 'string', description: 'The value to hash.', required: true },
      },
      operations: {
        update: async (req) => ({ data: { hash: core.audit.hash(path(req), req.data.input as string) } }),
      },
    },
  ];
}
