import type { PathRecord, Response } from '../backend.js';
import { VERSION, type Core } from '../core.js';
import { badRequest } from '../errors.js';

/** Accepts an unseal key as hex (what `operator init` prints first) or base64, as Vault does. */
export function decodeKey(key: string): Buffer {
  if (/^[0-9a-fA-F]+$/.test(key) && key.length % 2 === 0) return Buffer.from(key, 'hex');
  const b64 = Buffer.from(key, 'base64');
  if (b64.length > 0 && b64.toString('base64').replace(/=+$/, '') === key.replace(/=+$/, '')) return b64;
  throw badRequest("'key' must be a valid hex or base64 string");
}

export function sealPaths(core: Core, storageType: string): PathRecord[] {
  const status = async (): Promise<Response> => ({ rawBody: await core.sealStatus(storageType) });
  return [
    {
      pattern: 'init',
      summary: 'Initializes a new server: root key, key shares and root token.',
      unauthenticated: true,
      whileSealed: true,
      rejectUnknownFields: false,
      fields: {
        secret_shares: {
          type: 'int',
          description: 'Number of key shares to split the unseal key into (required with the Shamir seal).',
        },
        secret_threshold: {
          type: 'int',
          description: 'Number of shares needed to unseal (required with the Shamir seal).',
        },
        pgp_keys: { type: 'string-list', description: 'Not supported: PGP encryption of the shares.' },
        recovery_shares: {
          type: 'int',
          description: 'With an auto-unseal seal (PKCS#11): number of recovery key shares (default 5).',
        },
        recovery_threshold: {
          type: 'int',
          description: 'With an auto-unseal seal (PKCS#11): recovery shares needed to authorise (default 3).',
        },
      },
      operations: {
        read: async () => ({ rawBody: { initialized: await core.initialized() } }),
        update: async (req) => {
          if ((req.data.pgp_keys as string[] | undefined)?.length) throw badRequest('pgp_keys are not supported');
          const int = (name: string): number | undefined => req.data[name] as number | undefined;
          if (core.seal.autoUnseal) {
            // As Vault: the seal unwraps the root key itself; the operators get recovery keys.
            const result = await core.initialize(int('recovery_shares') ?? 5, int('recovery_threshold') ?? 3);
            return {
              rawBody: {
                keys: [],
                keys_base64: [],
                recovery_keys: result.keys.map((k) => k.toString('hex')),
                recovery_keys_base64: result.keys.map((k) => k.toString('base64')),
                root_token: result.rootToken,
              },
            };
          }
          for (const name of ['secret_shares', 'secret_threshold']) {
            if (int(name) === undefined) throw badRequest(`missing required field "${name}"`);
          }
          const result = await core.initialize(int('secret_shares')!, int('secret_threshold')!);
          return {
            rawBody: {
              keys: result.keys.map((k) => k.toString('hex')),
              keys_base64: result.keys.map((k) => k.toString('base64')),
              root_token: result.rootToken,
            },
          };
        },
      },
    },
    {
      pattern: 'seal-status',
      summary: 'Reports whether the server is initialized and sealed, and unseal progress.',
      unauthenticated: true,
      whileSealed: true,
      noAudit: true,
      operations: { read: status },
    },
    {
      pattern: 'unseal',
      summary: 'Submits one unseal key share, or resets the progress.',
      unauthenticated: true,
      whileSealed: true,
      fields: {
        key: { type: 'string', description: 'One unseal key share, hex or base64.' },
        reset: { type: 'bool', description: 'Discards the shares submitted so far.' },
        migrate: {
          type: 'bool',
          description:
            'The key is a share of the seal the store is being migrated away from (unseal key or recovery key).',
        },
      },
      operations: {
        update: async (req) => {
          if (req.data.reset === true) await core.resetUnseal();
          else if (typeof req.data.key === 'string' && req.data.key !== '') {
            await core.submitUnsealKey(decodeKey(req.data.key), req.data.migrate === true);
          } else throw badRequest("'key' must be specified in request body as JSON, or 'reset' set to true");
          return status();
        },
      },
    },
    {
      pattern: 'seal',
      summary: 'Seals the server: keys leave memory and every data path answers 503.',
      sudo: true,
      drainsRequests: true,
      operations: {
        update: async () => {
          await core.sealByOperator();
          return undefined;
        },
      },
    },
    {
      pattern: 'health',
      summary:
        "Health with Vault's status codes: 200 active, 501 uninitialized, 503 sealed, or unsealed but refusing " +
        'requests (refusing_requests says why).',
      unauthenticated: true,
      whileSealed: true,
      noAudit: true,
      operations: {
        read: async (req) => {
          // An unsealed node is initialized: no read of the store, which may be what fails (refusing, below).
          const initialized = core.sealed ? await core.initialized() : true;
          const code = (name: string, fallback: number): number => {
            const value = Number(req.query[name]);
            return Number.isInteger(value) && value >= 100 && value < 600 ? value : fallback;
          };
          const refusing = initialized ? await core.refusing() : undefined;
          const status = !initialized
            ? code('uninitcode', 501)
            : core.sealed
              ? code('sealedcode', 503)
              : refusing
                ? 503
                : code('activecode', 200);
          return {
            status,
            rawBody: {
              ...(refusing ? { refusing_requests: refusing } : {}),
              initialized,
              sealed: core.sealed,
              standby: false,
              performance_standby: false,
              replication_performance_mode: 'disabled',
              replication_dr_mode: 'disabled',
              server_time_utc: Math.floor(Date.now() / 1000),
              version: VERSION,
              cluster_name: 'cofre',
              cluster_id: '',
            },
          };
        },
      },
    },
    {
      pattern: 'leader',
      summary: 'High-availability status: whether this node leads (runs the background jobs), and which one does.',
      unauthenticated: true,
      noAudit: true,
      operations: {
        read: async () => {
          const ha = await core.haStatus();
          const leader = ha.nodes.find((n) => n.leader);
          return {
            rawBody: {
              ha_enabled: ha.enabled,
              is_self: ha.leader,
              active_time: ha.leader ? ha.leaderSince.toISOString() : '0001-01-01T00:00:00Z',
              leader_address: leader?.apiAddr ?? '',
              leader_cluster_address: '',
              performance_standby: false,
              performance_standby_last_remote_wal: 0,
            },
          };
        },
      },
    },
    {
      pattern: 'ha-status',
      summary: 'The nodes sharing this store, and which one leads.',
      operations: {
        read: async () => {
          const ha = await core.haStatus();
          const nodes = ha.nodes.map((n) => ({
            hostname: n.nodeId,
            api_address: n.apiAddr,
            cluster_address: '',
            active_node: n.leader,
            last_echo: n.lastSeen.toISOString(),
          }));
          return { data: { nodes }, mergeDataToTop: true };
        },
      },
    },
    {
      pattern: 'key-status',
      summary: "The barrier keyring's active term and when it was installed.",
      operations: {
        read: async () => {
          const { term, installTime } = core.barrier.keyStatus();
          return { data: { term, install_time: installTime.toISOString() }, mergeDataToTop: true };
        },
      },
    },
    {
      pattern: 'rotate',
      summary: 'Adds a new barrier key term; new writes use it, old entries stay readable.',
      sudo: true,
      operations: {
        update: async () => {
          await core.rotate();
          return undefined;
        },
      },
    },
  ];
}
