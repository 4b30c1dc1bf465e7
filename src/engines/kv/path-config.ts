import type { PathRecord, Request, Response } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { parseDuration } from '../../core/fields.js';
import { goDuration } from './request.js';
import type { KvState } from './store.js';
import { KvStore } from './store.js';

/** config: mount-wide max_versions, cas_required and delete_version_after. */
export function configPaths(state: KvState): PathRecord[] {
  const read = async (req: Request): Promise<Response> => {
    const config = await new KvStore(req.storage, state).config();
    return {
      data: {
        cas_required: config.cas_required,
        delete_version_after: goDuration(config.delete_version_after),
        max_versions: config.max_versions,
      },
    };
  };

  const write = async (req: Request): Promise<undefined> => {
    const { max_versions: max, cas_required: cas, delete_version_after: dva } = req.data;
    // Vault writes nothing when no setting is given.
    if (max === undefined && cas === undefined && dva === undefined) return undefined;
    const maxVersions = max === undefined ? undefined : nonNegative(max as number, 'max_versions');
    const deleteAfter = dva === undefined ? undefined : signedDuration(dva);
    await new KvStore(req.storage, state).changeConfig((config) => {
      if (maxVersions !== undefined) config.max_versions = maxVersions;
      if (cas !== undefined) config.cas_required = cas as boolean;
      if (deleteAfter !== undefined) config.delete_version_after = deleteAfter;
    });
    return undefined;
  };

  return [
    {
      pattern: 'config',
      summary: 'Configure backend level settings that are applied to every key in the key-value store.',
      fields: {
        max_versions: { type: 'int', description: 'The number of versions to keep for each key. Defaults to 10.' },
        cas_required: {
          type: 'bool',
          description: 'If true, the backend will require the cas parameter to be set for each write.',
        },
        delete_version_after: {
          // 'any': the field is a signed duration, which the shared duration type (non-negative) cannot express.
          type: 'any',
          description:
            'The length of time before a version is deleted. A negative duration disables it on all keys; zero clears it.',
        },
      },
      operations: { read, update: write, create: write },
    },
  ];
}

export function nonNegative(value: number, name: string): number {
  // Vault stores max_versions as an unsigned integer; a negative value would wrap around, so refuse it instead.
  if (value < 0) throw badRequest(`invalid value for field "${name}": must not be negative`);
  return value;
}

/** A duration that may be negative: any negative value means "disabled", stored as -1 second like Vault. */
function signedDuration(value: unknown): number {
  if (typeof value === 'number' && value < 0) return -1;
  if (typeof value === 'string' && value.trim().startsWith('-')) {
    return parseDuration(value.trim().slice(1), 'delete_version_after') === 0 ? 0 : -1;
  }
  return parseDuration(value, 'delete_version_after');
}
