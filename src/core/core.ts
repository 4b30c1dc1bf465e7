import { randomBytes, timingSafeEqual } from 'node:crypto';
import { AuditBroker, type AuditSinkFactory } from './audit-broker.js';
import { ChangeLog } from './change-log.js';
import { CUBBYHOLE_PATH, destroyCubbyhole } from './cubbyhole.js';
import { ExpirationManager, resolveTtl } from './expiration.js';
import { PasswordPolicyStore } from './password-policy.js';
import { TokenStore, type TokenLifecycle } from './token-store.js';
import { tokenLifecycle, tokenSecretType, TOKEN_LEASE_TYPE } from './token-leases.js';
import type { BackendFactory, SystemView } from './backend.js';
import { Barrier, KEYRING_PATH } from './barrier.js';
import { COPY_IN_PROGRESS_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY } from './store-copy.js';
import { badRequest, CofreError } from './errors.js';
import { MountTable, type MountEntry } from './mount-table.js';
import { PolicyStore } from './policy-store.js';
import { SealKeyError, type Seal, type SealConfig, type WrappedRootKey } from './seal.js';
import { RootGeneration } from './root-generation.js';
import { forwardCeremonyCall, ForwardedCalls } from './ceremony-forwarding.js';
import {
  type CeremonyCall,
  forwardedCeremonies,
  type KeyCeremonies,
  localCeremonies,
  runCeremonyCall,
} from './key-ceremonies.js';
import { Rekey } from './rekey.js';
import { isStorageConflict, type CheckOp, type ClusterNode, type SharedStorage, type Storage } from './storage.js';
import { dropEverything, dropRemoteChanges, reloadAllTables, type RemoteChanges } from './remote-changes.js';
import { InvalidationRegistry } from './invalidation.js';
import { StorageView } from './storage-view.js';
import { RequestGate } from './request-gate.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** A node that could not join the leader election tries again after 1 s, 2 s, 4 s, … up to this. */
/**
 * Waits before trying again a reload of the tables (keyring, mounts, audit) that failed, the store not answering:
 * requests wait meanwhile, rather than meet the tables as they were before a change other nodes acknowledged.
 */
const TABLE_RELOAD_RETRIES_MS = [100, 400, 1600];
/** Where an initialization under way is claimed, and after how long a claim left by one that died is taken over. */
const INIT_CLAIM_KEY = 'core/init-claim';
const INIT_CLAIM_MS = 60_000;
const UNFINISHED_COPY =
  'this store holds a snapshot restore (or a migration) that did not finish, so it may not be initialized: restore ' +
  'the snapshot again with the server stopped (cofre operator snapshot restore -offline-config <server config> FILE)';
/**
 * How long requests wait for a node that cannot hear other nodes' changes to hear them again (a new LISTEN
 * connection is usually made within a second), or for the tables it failed to load to load, before they are refused.
 */
const HOLD_LIMIT_MS = 5000;
const CAMPAIGN_RETRY_MS = 1000;
const CAMPAIGN_RETRY_MAX_MS = 10_000;
/** After sys/step-down, a node waits this long before campaigning again, as Vault's manual step-down sleep. */
const STEP_DOWN_SLEEP_MS = 10_000;
/** How long a seal waits for the requests in flight (Vault's default max_request_duration is 90 s). */
const SEAL_DRAIN_TIMEOUT_MS = 30_000;

/** Where the core tells operators what they must know: the HTTP server's logger, once it exists (logTo). */
export interface CoreLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface CoreOptions {
  physical: Storage;
  seal: Seal;
  factories: { mounts: Record<string, BackendFactory>; auth: Record<string, BackendFactory> };
  auditDevices: Record<string, AuditSinkFactory>;
  /** Mounts created at first unseal of a new store (dev mode adds secret/ as KV v2). */
  defaultMounts?: MountEntry[];
  /**
   * The seal a store may be migrated away from (`cofre operator unseal -migrate`): the Shamir seal when the
   * configured seal is an auto seal, or the PKCS#11 seal marked `disabled` when migrating back to Shamir.
   */
  migrateFrom?: Seal;
  /** Called after every unseal, once the mount table and stores are loaded (registers the system backend). */
  onUnsealed?: (core: Core) => void;
  /** The other server threads of this process (src/workers/): they seal and take unseal keys with this one. */
  peers?: ServerPeers;
}

/**
 * The other server threads of one process, serving the same store. A server is sealed or unsealed as a whole: an
 * operator's key share or seal reaches one thread (whichever took the connection) and that thread hands it on.
 * Each call resolves once every other thread has done the same, so the answer to the operator is true of all.
 */
export interface ServerPeers {
  /** This thread was sealed by an operator (sys/seal, a snapshot restore). */
  sealed(): Promise<void>;
  /** This thread took an unseal key share (or `reset`, a reset of the progress). */
  unsealKey(key: Buffer | 'reset', migrate: boolean): Promise<void>;
  /** Set on every thread but the one that holds the generate-root and rekey attempts: runs a call there. */
  ceremony?(call: CeremonyCall): Promise<unknown>;
}

export interface SealStatus {
  type: string;
  initialized: boolean;
  sealed: boolean;
  t: number;
  n: number;
  progress: number;
  nonce: string;
  version: string;
  build_date: string;
  migration: boolean;
  recovery_seal: boolean;
  storage_type: string;
}

export const VERSION = '0.1.0';

/**
 * A token's cubbyhole goes with the token, as in Vault: whatever revokes a token (revoke, its parent's
 * revocation, its last use, its expiry) destroys its cubbyhole before the token itself is deleted, so a
 * revocation that fails half-way is retried with the cubbyhole still to destroy.
 */
function withCubbyhole(lifecycle: TokenLifecycle, cubbyhole: () => Storage | undefined): TokenLifecycle {
  return {
    expires: (entry, renewal) => lifecycle.expires(entry, renewal),
    revoking: async (entry) => {
      await lifecycle.revoking(entry);
      const storage = cubbyhole();
      if (storage) await destroyCubbyhole(storage, entry.hash);
    },
  };
}

/** See Core.addBackgroundJob. `start` must not throw; it runs its own failures down. */
export interface BackgroundJob {
  start(): void;
  stop(): void;
}

/**
 * The core: seal state, barrier, mount table, token and policy stores. It holds the root key in memory only
 * while unsealed, and drops it (with every cache) on seal.
 */
export class Core {
  readonly barrier: Barrier;
  readonly mounts: MountTable;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;
  readonly audit: AuditBroker;
  readonly changes: ChangeLog;
  readonly expiration: ExpirationManager;
  readonly passwordPolicies: PasswordPolicyStore;
  /** Which store caches which storage keys, for following other nodes' writes (see remote-changes.ts). */
  readonly invalidation = new InvalidationRegistry();
  /** sys/generate-root and sys/rekey: attempts held in memory only, dropped on seal (as Vault's). */
  private readonly rootGeneration = new RootGeneration(this);
  private readonly rekey = new Rekey(this);
  private readonly heldCeremonies = localCeremonies(this.rootGeneration, this.rekey);
  /** The calls other nodes forwarded to this one as their leader, each run once (ceremony-forwarding.ts). */
  private readonly forwardedCalls: ForwardedCalls;
  /**
   * What sys/generate-root and sys/rekey call: these attempts, another server thread's (key-ceremonies.ts), or the
   * leader's when nodes share a PostgreSQL store (ceremony-forwarding.ts).
   */
  readonly ceremonies: KeyCeremonies;
  /** Background work of parts that are not mounts, run with lease expiry on the one node that runs it. */
  private readonly backgroundJobs: BackgroundJob[] = [];
  private backgroundRunning = false;
  private rootKey: Buffer | undefined;
  private pendingShares: Buffer[] = [];
  private unsealNonce = '';
  private sealConfigCache: SealConfig | undefined;
  /** The store shared with other nodes, when there is one. */
  private cluster: { store: SharedStorage; apiAddr: string } | undefined;
  /** Whether this node runs the background jobs: a single node always does; in a cluster, the elected one. */
  private leading = true;
  private leaderSince = new Date();
  /** Why this node's last attempt to join the leader election failed; "" once it campaigns. */
  private campaignError = '';
  private campaignFailures = 0;
  private campaignRetry: NodeJS.Timeout | undefined;
  private tablesReload: Promise<void> | undefined;
  /** The reloads of the tables (keyring, mounts, audit), one after another in the order they were asked for. */
  private tablesLine: Promise<void> = Promise.resolve();
  /**
   * Set when loading another node's change to the tables failed after every retry: this node cannot tell which
   * mounts, audit devices and keyring terms are current, and must not serve by the ones it has (a mount disabled
   * elsewhere, say). Each request first loads them all again (one load for all) and is refused while that fails.
   */
  private tablesUnknown = false;
  private reloadingUnknown: Promise<void> | undefined;
  private deafHold: { deaf: Promise<void>; held: Promise<void>; givenUp: boolean } | undefined;
  private log: CoreLog = { warn: () => undefined, info: () => undefined };
  /** Counts seals, so that a campaign attempt begun before the last seal does not act after it. */
  private seals = 0;
  /** Requests in flight, which a seal lets finish (see sealAfterDraining). */
  readonly requests = new RequestGate();

  constructor(private readonly opts: CoreOptions) {
    const forward = opts.peers?.ceremony?.bind(opts.peers);
    this.ceremonies = forwardedCeremonies(forward ?? ((call) => this.routeCeremony(call)));
    // Each store declares the keys it caches where it is built: the barrier's keyring, unsealed again by the root
    // key only the core holds, comes first of all.
    const reloadKeyring = (): Promise<void> => this.reloadKeyring();
    this.barrier = new Barrier(opts.physical, reloadKeyring);
    this.forwardedCalls = new ForwardedCalls(this.barrier);
    this.invalidation.on(KEYRING_PATH, { stage: 'keyring', apply: reloadKeyring, reload: reloadKeyring });
    this.mounts = new MountTable(this.barrier, opts.factories, (entry) => this.systemView(entry));
    this.mounts.registerInvalidation(this.invalidation, () => this.reloadMounts());
    const tokenLeases = tokenSecretType(() => this.tokens);
    const leaseView = new StorageView(this.barrier, 'sys/expire/');
    this.expiration = new ExpirationManager(
      leaseView,
      (prefix, type) => {
        if (type === TOKEN_LEASE_TYPE) return { secretType: tokenLeases, storage: this.barrier };
        const mounted = this.mounts.match(prefix);
        const secretType = mounted?.prefix === prefix ? mounted.backend.secrets?.[type] : undefined;
        return secretType && mounted ? { secretType, storage: mounted.storage } : undefined;
      },
      new StorageView(this.barrier.uncached(), leaseView.prefix),
      (prefix) => {
        const mounted = this.mounts.match(prefix);
        return mounted?.prefix === prefix ? mounted.entry.uuid : undefined;
      },
    );
    this.invalidation.on(leaseView.prefix, this.expiration.invalidation);
    const tokenView = new StorageView(this.barrier, 'sys/token/');
    this.tokens = new TokenStore(
      tokenView,
      new StorageView(this.barrier.uncached(), tokenView.prefix),
      withCubbyhole(
        tokenLifecycle(
          () => this.expiration,
          (path) => this.mounts.match(path)?.prefix,
        ),
        () => this.mounts.get('mounts', CUBBYHOLE_PATH)?.storage,
      ),
      {
        sealer: this.barrier,
        mountAccessorOf: (path) => {
          const mounted = this.mounts.match(path);
          return mounted?.table === 'auth' ? mounted.entry.accessor : undefined;
        },
      },
    );
    this.invalidation.on(tokenView.prefix, this.tokens.invalidation);
    this.passwordPolicies = new PasswordPolicyStore(new StorageView(this.barrier, 'sys/password_policy/'));
    const policyView = new StorageView(this.barrier, 'sys/policy/');
    this.policies = new PolicyStore(policyView);
    this.invalidation.on(policyView.prefix, this.policies.invalidation);
    this.audit = new AuditBroker(this.barrier, opts.auditDevices);
    this.audit.registerInvalidation(this.invalidation);
    const eventView = new StorageView(this.barrier, 'sys/events/');
    this.changes = new ChangeLog(eventView);
    this.invalidation.on(eventView.prefix, this.changes.invalidation);
  }

  get sealed(): boolean {
    return this.barrier.sealed;
  }

  /** The store under the barrier: only encrypted bytes (snapshots and migration copy it as it is). */
  get physical(): Storage {
    return this.opts.physical;
  }

  get seal(): Seal {
    return this.opts.seal;
  }

  async initialized(): Promise<boolean> {
    return (await this.sealConfig()) !== undefined;
  }

  async sealConfig(): Promise<SealConfig | undefined> {
    if (this.sealConfigCache) return this.sealConfigCache;
    const bytes = await this.opts.physical.get(SEAL_CONFIG_KEY);
    if (bytes) this.sealConfigCache = JSON.parse(Buffer.from(bytes).toString('utf8')) as SealConfig;
    return this.sealConfigCache;
  }

  /** sys/init: a new root key and keyring, the key shares and a root token. Leaves the server sealed, as Vault. */
  async initialize(shares: number, threshold: number): Promise<{ keys: Buffer[]; rootToken: string }> {
    if (await this.initialized()) throw badRequest('Vault is already initialized');
    // Read after the seal configuration (a copy takes that away and sets its mark in one commit): absent both, no
    // copy had begun when the configuration was read, nor has one since.
    if (await this.opts.physical.get(COPY_IN_PROGRESS_KEY)) throw badRequest(UNFINISHED_COPY);
    if (shares < 1 || shares > 255) throw badRequest('secret_shares must be between 1 and 255');
    if (threshold < 1 || threshold > shares) throw badRequest('secret_threshold must be between 1 and secret_shares');
    if (shares > 1 && threshold === 1) throw badRequest('threshold must be greater than one for multiple shares');
    const claim = await this.claimInitialization();
    try {
      const rootKey = randomBytes(32);
      const wrapped = await this.opts.seal.wrapRootKey(rootKey, shares, threshold);
      // Only while the claim is still this call's: one taken over (its holder stalled for a minute) writes nothing.
      const stillClaimed: CheckOp[] = [
        { op: 'check', key: INIT_CLAIM_KEY, value: claim },
        { op: 'check', key: SEAL_CONFIG_KEY, value: null },
      ];
      await this.barrier.initialize(rootKey, stillClaimed);
      this.rootKey = rootKey;
      await this.loadUnsealed();
      const { token } = await this.tokens.create({
        policies: ['root'],
        displayName: 'root',
        ttl: 0,
        parentHash: '',
        path: 'auth/token/root',
      });
      // The seal config is written last: a crash before this point leaves a store that is not yet initialized.
      const config: SealConfig = { type: this.opts.seal.type, secret_shares: shares, secret_threshold: threshold };
      await this.opts.physical
        .transaction([
          { op: 'check', key: SEAL_CONFIG_KEY, value: null },
          { op: 'check', key: COPY_IN_PROGRESS_KEY, value: null },
          { op: 'check', key: INIT_CLAIM_KEY, value: claim },
          { op: 'delete', key: INIT_CLAIM_KEY },
          { op: 'put', key: ROOT_KEY_KEY, value: wrapped.stored },
          { op: 'put', key: SEAL_CONFIG_KEY, value: Buffer.from(JSON.stringify(config)) },
        ])
        .catch((err: unknown) => {
          throw isStorageConflict(err) ? badRequest('Vault was initialized (or is being restored) meanwhile') : err;
        });
      this.sealConfigCache = config;
      this.sealNow();
      // A seal that unwraps by itself (PKCS#11) leaves the server unsealed, as Vault does after init.
      if (this.opts.seal.autoUnseal) await this.unsealWith([]);
      return { keys: wrapped.keyShares, rootToken: token };
    } catch (err) {
      // Failed before it was done: the keys it holds go, and the claim, so a new attempt need not wait for it to age.
      this.sealNow();
      await this.opts.physical
        .transaction([
          { op: 'check', key: INIT_CLAIM_KEY, value: claim },
          { op: 'delete', key: INIT_CLAIM_KEY },
        ])
        .catch(() => undefined);
      throw err;
    }
  }

  /**
   * Takes the store's initialization for this call: two at once (on two nodes, or two server threads, which both
   * found no seal configuration) each wrote a keyring, the later over the earlier, and the one whose seal
   * configuration committed could then not open the store with its keys. The claim is committed with a check of
   * what was read; one left by an initialization that died is taken over once it is INIT_CLAIM_MS old.
   */
  private async claimInitialization(): Promise<Buffer> {
    const held = await this.opts.physical.get(INIT_CLAIM_KEY);
    const since = held
      ? Date.parse((JSON.parse(Buffer.from(held).toString('utf8')) as { since?: string }).since ?? '')
      : NaN;
    const busy = badRequest(
      'Vault is being initialized by another request (on this or another node)' +
        (Number.isFinite(since)
          ? `, begun at ${new Date(since).toISOString()}; an initialization that died is taken over from ` +
            `${new Date(since + INIT_CLAIM_MS).toISOString()}`
          : ''),
    );
    if (held && !(Date.now() - since >= INIT_CLAIM_MS)) throw busy;
    const claim = Buffer.from(JSON.stringify({ id: randomBytes(16).toString('hex'), since: new Date().toISOString() }));
    await this.opts.physical
      .transaction([
        { op: 'check', key: INIT_CLAIM_KEY, value: held ?? null },
        // Initialized (or being restored into) since this call looked: the one before it deleted its claim.
        { op: 'check', key: SEAL_CONFIG_KEY, value: null },
        { op: 'check', key: COPY_IN_PROGRESS_KEY, value: null },
        { op: 'put', key: INIT_CLAIM_KEY, value: claim },
      ])
      .catch((err: unknown) => {
        throw isStorageConflict(err) ? badRequest('Vault was initialized (or is being initialized) meanwhile') : err;
      });
    return claim;
  }

  /**
   * On start: a seal that unwraps by itself unseals an initialized store now, with no human step. Says what it
   * did; a failure of the seal (a wrong PIN, a missing key) throws, naming the device and never the PIN.
   */
  async unsealOnStart(): Promise<'unsealed' | 'not initialized' | 'migration pending' | 'needs keys'> {
    const config = await this.sealConfig();
    if (!config) return 'not initialized';
    if (config.type !== this.opts.seal.type) return 'migration pending';
    if (!this.opts.seal.autoUnseal) return 'needs keys';
    await this.unsealWith([]);
    return 'unsealed';
  }

  /**
   * One key share towards unsealing; unseals when the threshold is reached. Wrong keys reset the progress. With
   * `migrate`, the shares are those of the seal the store was sealed by, and the root key is wrapped anew by the
   * configured seal.
   */
  async submitUnsealKey(key: Buffer, migrate = false, fromPeer = false): Promise<void> {
    try {
      await this.takeUnsealKey(key, migrate);
    } finally {
      // Whatever this thread made of the share, the others make the same of it: their progress stays the same.
      if (!fromPeer) await this.opts.peers?.unsealKey(key, migrate);
    }
  }

  /** sys/unseal with reset: the progress of every server thread starts again. */
  async resetUnseal(fromPeer = false): Promise<void> {
    this.resetUnsealProgress();
    if (!fromPeer) await this.opts.peers?.unsealKey('reset', false);
  }

  /** Seals on an operator's request: this thread once its requests have ended, then every other server thread. */
  async sealByOperator(fromPeer = false): Promise<void> {
    await this.sealAfterDraining();
    if (!fromPeer) await this.opts.peers?.sealed();
  }

  private async takeUnsealKey(key: Buffer, migrate: boolean): Promise<void> {
    const config = await this.sealConfig();
    if (!config) throw badRequest('Vault is not initialized');
    if (!this.sealed) return;
    const pending = config.type !== this.opts.seal.type;
    if (pending && !migrate) {
      throw badRequest(
        `the store is sealed by the "${config.type}" seal but this server is configured with the ` +
          `"${this.opts.seal.type}" seal: unseal with -migrate to migrate it`,
      );
    }
    if (!pending && migrate) throw badRequest('no seal migration is pending: unseal without -migrate');
    // Vault ignores a repeated key; compared in constant time, as every other comparison of a share.
    if (this.pendingShares.some((s) => s.length === key.length && timingSafeEqual(s, key))) return;
    if (this.pendingShares.length === 0) this.unsealNonce = randomBytes(16).toString('hex');
    this.pendingShares.push(key);
    if (this.pendingShares.length < config.secret_threshold) return;
    const shares = this.pendingShares;
    this.resetUnsealProgress();
    if (pending) await this.migrateSeal(config, shares);
    else await this.unsealWith(shares);
  }

  /**
   * Seal migration: the old seal opens the root key with its shares, the configured seal wraps it so that the same
   * shares go on working (unseal keys become recovery keys and back, as in Vault), and the new wrapping and seal
   * configuration are written in ONE storage transaction: a crash leaves the store under the old seal or the new.
   */
  private async migrateSeal(config: SealConfig, shares: Buffer[]): Promise<void> {
    const from = this.opts.migrateFrom;
    if (!from || from.type !== config.type) {
      throw badRequest(
        `the store is sealed by the "${config.type}" seal, which this server cannot open: configure it (for ` +
          'PKCS#11, its seal block with disabled = true) to migrate away from it',
      );
    }
    const stored = await this.opts.physical.get(ROOT_KEY_KEY);
    if (!stored) throw badRequest('Vault is not initialized');
    let opened: { rootKey: Buffer; sharesKey: Buffer };
    try {
      opened = await from.openForMigration(Buffer.from(stored), shares);
    } catch (err) {
      if (err instanceof SealKeyError) throw badRequest(err.message);
      throw err;
    }
    const wrapped = await this.opts.seal.wrapForMigration(opened.rootKey, opened.sharesKey);
    opened.sharesKey.fill(0);
    const migrated: SealConfig = { ...config, type: this.opts.seal.type };
    await this.opts.physical.transaction([
      { op: 'put', key: ROOT_KEY_KEY, value: wrapped },
      { op: 'put', key: SEAL_CONFIG_KEY, value: Buffer.from(JSON.stringify(migrated)) },
    ]);
    this.sealConfigCache = migrated;
    await this.unsealWithRootKey(opened.rootKey);
  }

  /** For auto-unseal seals and dev mode, which hold their key material themselves. */
  async unsealWith(shares: Buffer[]): Promise<void> {
    const stored = await this.opts.physical.get(ROOT_KEY_KEY);
    if (!stored) throw badRequest('Vault is not initialized');
    let rootKey: Buffer;
    try {
      rootKey = await this.opts.seal.unwrapRootKey(Buffer.from(stored), shares);
    } catch (err) {
      if (err instanceof SealKeyError) throw badRequest(err.message);
      throw err;
    }
    await this.unsealWithRootKey(rootKey);
  }

  private async unsealWithRootKey(rootKey: Buffer): Promise<void> {
    await this.barrier.unseal(rootKey);
    this.rootKey = rootKey;
    try {
      await this.loadUnsealed();
    } catch (err) {
      // Half loaded (a mount table, audit devices or leases missing), the node must not serve: sealed again, as
      // Vault does when a step after unsealing the barrier fails, and the error goes to whoever unsealed.
      this.sealNow();
      throw err;
    }
  }

  resetUnsealProgress(): void {
    this.pendingShares = [];
    this.unsealNonce = '';
  }

  /**
   * Seals once the requests in flight have ended (new ones are refused meanwhile), as Vault's seal waits for them:
   * the keys never go in the middle of a handler's writes. One that runs longer than `timeoutMs` is cut off.
   */
  sealAfterDraining(timeoutMs = SEAL_DRAIN_TIMEOUT_MS): Promise<void> {
    return this.requests.close(() => this.sealNow(), timeoutMs);
  }

  sealNow(): void {
    this.seals++;
    this.stopCampaignRetry();
    this.stopBackground();
    if (this.cluster) {
      this.leading = false;
      void this.cluster.store.resign();
    }
    this.barrier.seal();
    this.rootKey?.fill(0);
    this.rootKey = undefined;
    this.policies.clear();
    this.tokens.clear();
    this.resetUnsealProgress();
    this.dropCeremonies();
    void this.audit.closeAll();
  }

  /**
   * The stored wrapped root key, if these key shares open it and it is the root key this node is unsealed with
   * (what generate-root and rekey ask before they act on the operators' authority); undefined for wrong or forged
   * shares. A rekey keeps the wrapping to check, at its commit, that nobody replaced it meanwhile.
   */
  async wrappedRootKeyOpenedBy(shares: Buffer[]): Promise<Buffer | undefined> {
    const rootKey = this.rootKey;
    if (!rootKey) throw new CofreError(503, 'Vault is sealed');
    const bytes = await this.opts.physical.get(ROOT_KEY_KEY);
    if (!bytes) return undefined;
    const stored = Buffer.from(bytes);
    try {
      const opened = await this.opts.seal.unwrapRootKey(stored, shares);
      return opened.length === rootKey.length && timingSafeEqual(opened, rootKey) ? stored : undefined;
    } catch (err) {
      if (err instanceof SealKeyError) return undefined;
      throw err;
    }
  }

  /** The root key wrapped under a new unseal key split into new shares: not stored yet (see rekey.ts). */
  async wrapRootKeyAnew(shares: number, threshold: number): Promise<WrappedRootKey> {
    if (!this.rootKey) throw new CofreError(503, 'Vault is sealed');
    return this.opts.seal.wrapRootKey(this.rootKey, shares, threshold);
  }

  /**
   * Replaces the wrapped root key and the seal configuration in ONE storage transaction. Both live outside the
   * barrier, and the keyring (sealed by the root key, which does not change) is not touched: after a crash the
   * store holds either the old wrapping with the old configuration (the old shares open it) or the new ones (the
   * new shares do). No state exists in which neither set of shares opens the store.
   */
  async replaceWrappedRootKey(stored: Buffer, shares: number, threshold: number, replacing: Buffer): Promise<void> {
    // The shares were checked against `replacing`: if another node's rekey or a snapshot restore replaced it since,
    // writing ours would silently undo theirs. (Nodes do not lock each other out here: this narrows, on a shared
    // store, a race Vault avoids by rekeying on its one active node only.)
    const current = await this.opts.physical.get(ROOT_KEY_KEY);
    if (!current || !replacing.equals(Buffer.from(current))) {
      throw badRequest(
        'the unseal keys changed while this rekey was in progress (another rekey or a snapshot restore): ' +
          'cancel it and start again',
      );
    }
    const config: SealConfig = { type: this.opts.seal.type, secret_shares: shares, secret_threshold: threshold };
    await this.opts.physical.transaction([
      { op: 'put', key: ROOT_KEY_KEY, value: stored },
      { op: 'put', key: SEAL_CONFIG_KEY, value: Buffer.from(JSON.stringify(config)) },
    ]);
    this.sealConfigCache = config;
  }

  /**
   * sys/step-down: this node gives up running the background jobs and lets another node of the cluster take them
   * over, campaigning again only after a pause (Vault's manual step-down sleep). A single node, or a node that
   * does not lead, has nothing to give up: a no-op, as Vault's step-down of a lone node. So are the threads of one
   * server (src/workers/): only the first leads, so its step-down would leave lease expiry stopped for the pause
   * and end a generate-root or rekey attempt, with no other thread to take over.
   */
  async stepDown(): Promise<void> {
    if (!this.cluster?.store.otherProcesses || !this.leading || this.sealed) return;
    const seals = this.seals;
    this.leading = false;
    this.stopBackground();
    this.dropCeremonies();
    try {
      await this.cluster.store.resign();
    } finally {
      // Even when the release failed (its error goes to the caller), the node comes back to the election: no node
      // may end up outside it for good.
      if (this.seals === seals && !this.sealed) {
        clearTimeout(this.campaignRetry);
        this.campaignRetry = setTimeout(() => void this.campaign(), STEP_DOWN_SLEEP_MS);
        this.campaignRetry.unref();
      }
    }
  }

  /**
   * Where a generate-root or rekey call runs: here, unless nodes of other processes share the store and another
   * node leads, which holds the attempts (as Vault's active node) and gets the call.
   */
  private async routeCeremony(call: CeremonyCall): Promise<unknown> {
    if (!this.cluster?.store.otherProcesses || this.leading || this.sealed) {
      return runCeremonyCall(this.heldCeremonies, call);
    }
    const leader = (await this.cluster.store.nodes()).find((node) => node.leader);
    if (!leader) throw new CofreError(503, 'no node of the cluster leads now; retry once sys/leader names one');
    return forwardCeremonyCall(this.barrier, leader.apiAddr, call);
  }

  /**
   * A call another node forwarded to this one as the leader (sys/internal/key-ceremony): its answer, sealed. Runs
   * only while this node leads, so that a call never travels further.
   */
  async runForwardedCeremony(sealed: string): Promise<string> {
    if (!this.cluster?.store.otherProcesses) throw badRequest('this server is not a node of a cluster');
    return this.forwardedCalls.answer(sealed, async (call) => {
      if (!this.leading) throw new CofreError(503, 'this node no longer leads the cluster; retry');
      return runCeremonyCall(this.heldCeremonies, call);
    });
  }

  /** The attempts end with this node's part in them: on seal, and when it stops leading a cluster. */
  private dropCeremonies(): void {
    this.rootGeneration.cancel();
    this.rekey.cancel();
  }

  async rotate(): Promise<{ term: number; installTime: Date }> {
    if (!this.rootKey) throw new CofreError(503, 'Vault is sealed');
    return this.barrier.rotate(this.rootKey);
  }

  async sealStatus(storageType: string): Promise<SealStatus> {
    const config = await this.sealConfig();
    return {
      type: this.opts.seal.type,
      initialized: config !== undefined,
      sealed: this.sealed,
      t: config?.secret_threshold ?? 0,
      n: config?.secret_shares ?? 0,
      progress: this.pendingShares.length,
      nonce: this.unsealNonce,
      version: VERSION,
      build_date: '',
      migration: config !== undefined && config.type !== this.opts.seal.type,
      recovery_seal: this.opts.seal.autoUnseal,
      storage_type: storageType,
    };
  }

  private async loadUnsealed(): Promise<void> {
    // Every table is loaded below: whatever an earlier reload failed to load is read now.
    this.tablesUnknown = false;
    await this.tokens.load();
    this.policies.clear();
    const tokenMount = MountTable.newEntry('token', 'token', { description: 'token based credentials' });
    await this.mounts.load({ mounts: this.opts.defaultMounts ?? [], auth: [tokenMount] });
    await this.audit.load();
    await this.changes.load();
    this.opts.onUnsealed?.(this);
    if (this.cluster) await this.campaign();
    else await this.startBackground();
  }

  /** Applies, now, what other server threads committed before this moment (SharedStorage.catchUp). */
  catchUp(): void {
    this.cluster?.store.catchUp?.();
  }

  /**
   * What a request starting now waits for, so that it is served by what every node has acknowledged; undefined
   * nearly always. It is set
   * - while another node's change to the keyring, the mount tables or the audit table is being loaded
   *   (HOLDING_STAGES): the request is then routed by those mounts and recorded by those audit devices;
   * - when such a load failed for good: every table is loaded again first, and the request is refused (503) while
   *   that fails, or after HOLD_LIMIT_MS;
   * - while this node cannot hear other nodes' changes (SharedStorage.deaf): a token revoked elsewhere meanwhile
   *   must not be accepted from a cache. It waits up to HOLD_LIMIT_MS from the first request (or health check)
   *   that found it so, and is refused (503) after.
   */
  get requestHold(): Promise<void> | undefined {
    // A reload under way is waited for, then only what may make the node refuse: not the reloads that started
    // meanwhile, through which a burst of another node's changes would hold a request from start to end.
    return this.refusalHold() ?? this.tablesReload?.then(() => this.refusalHold());
  }

  /** Drops every cache when this node cannot tell whether they are stale (deaf, or its tables unknown). */
  forgetIfStale(): void {
    if (!this.sealed && (this.tablesUnknown || this.cluster?.store.deaf?.())) dropEverything(this);
  }

  /** The holds of a node that cannot tell whether it would serve stale (none while sealed: the unseal loads anew). */
  private refusalHold(): Promise<void> | undefined {
    if (this.sealed) return undefined;
    const deaf = this.cluster?.store.deaf?.();
    if (deaf) return this.untilHearing(deaf);
    if (this.tablesUnknown) return this.reloadUnknownTables();
    return undefined;
  }

  /**
   * What a request served outside handleRequest (help, a cluster's database credential) does first: applies what
   * other threads committed, and waits for a reload of the tables that another thread or node started.
   */
  async caughtUp(): Promise<void> {
    this.catchUp();
    const reloading = this.requestHold;
    if (reloading) await reloading;
  }

  logTo(log: CoreLog): void {
    this.log = log;
  }

  /** Runs `reload` once the table reloads asked for before it are done. */
  private inTablesLine(reload: () => Promise<void>): Promise<void> {
    const run = this.tablesLine.then(reload);
    this.tablesLine = run.catch(() => undefined);
    return run;
  }

  /** A change to the tables could not be loaded: requests are refused until every table loads again. */
  private tablesLost(err?: unknown): void {
    if (!this.tablesUnknown) {
      this.log.warn(
        { err: err instanceof Error ? err.message : undefined },
        "could not load another node's change to the mount, audit or keyring tables: refusing requests until they load",
      );
    }
    this.tablesUnknown = true;
    dropEverything(this);
  }

  /** Every table was loaded since the mark: requests are served again. */
  private tablesKnown(): void {
    if (!this.tablesUnknown) return;
    this.tablesUnknown = false;
    this.log.info({}, 'the mount, audit and keyring tables loaded again: serving requests');
  }

  /** One load of every table for all the requests that find them unknown; refused while it fails or hangs. */
  private reloadUnknownTables(): Promise<void> {
    if (!this.reloadingUnknown) {
      const seals = this.seals;
      const load = this.inTablesLine(() => reloadAllTables(this)).then(() => {
        if (this.seals === seals) this.tablesKnown();
      });
      this.reloadingUnknown = withinLimit(load, HOLD_LIMIT_MS)
        .catch(() => {
          throw new CofreError(
            503,
            'this node cannot load the mount, audit and keyring tables from storage: it serves no request until it can',
          );
        })
        .finally(() => (this.reloadingUnknown = undefined));
    }
    return this.reloadingUnknown;
  }

  /**
   * Why this node refuses the requests it would otherwise serve, if it does: what sys/health reports, so that a
   * load balancer sends them elsewhere. A deaf node is reported once its requests are refused, not while they wait
   * (a new connection usually listens within a second). Tables that failed to load are loaded again here, so that
   * a node no client reaches any more (its health check failing) still recovers.
   */
  async refusing(): Promise<string | undefined> {
    if (this.sealed) return undefined;
    const deaf = this.cluster?.store.deaf?.();
    if (deaf) {
      // Starts the hold's clock when no request has yet.
      this.untilHearing(deaf).catch(() => undefined);
      return this.deafHold?.givenUp ? "it lost its connection for other nodes' changes" : undefined;
    }
    if (!this.tablesUnknown) return undefined;
    try {
      await this.reloadUnknownTables();
      return undefined;
    } catch {
      return 'it cannot load the mount, audit and keyring tables from storage';
    }
  }

  /** The wait of the requests that find this node deaf (requestHold): one timer for all of them. */
  private untilHearing(deaf: Promise<void>): Promise<void> {
    if (this.deafHold?.deaf !== deaf) {
      const hold: { deaf: Promise<void>; held: Promise<void>; givenUp: boolean } = { deaf, held: deaf, givenUp: false };
      this.log.warn(
        {},
        "lost the connection other nodes' changes are heard on: holding requests until a new one listens",
      );
      // Closing ends the wait too, once the core is sealed: nothing is served then.
      void deaf.then(() => {
        if (!this.sealed) this.log.info({}, "listening to other nodes' changes again: serving requests");
      });
      hold.held = withinLimit(deaf, HOLD_LIMIT_MS).catch(() => {
        hold.givenUp = true;
        this.log.warn({ held_ms: HOLD_LIMIT_MS }, "still not hearing other nodes' changes: refusing requests");
        throw new CofreError(
          503,
          "this node lost its connection for other nodes' changes and has not made a new one: it serves no request " +
            'until it has',
        );
      });
      hold.held.catch(() => undefined); // each request awaits it; none may be waiting when it is refused
      this.deafHold = hold;
    }
    // Heard again: its "everything changed" reload is under way, which the request waits for too.
    return this.deafHold.held.then(() => this.requestHold);
  }

  private holdRequestsUntil(reloaded: Promise<void>): void {
    this.tablesReload = reloaded;
    void reloaded.then(() => {
      if (this.tablesReload === reloaded) this.tablesReload = undefined;
    });
  }

  /**
   * Joins the nodes sharing this store: caches follow the keys other nodes change, and this node runs the
   * background jobs only while it is the elected leader.
   */
  async joinCluster(store: SharedStorage, apiAddr: string): Promise<void> {
    this.cluster = { store, apiAddr };
    this.leading = false;
    // One batch at a time, in the order they came: a later notification must not overtake an earlier one. The
    // tables (keyring, mounts, audit) go in a line of their own, which requests may wait for (holdRequestsUntil):
    // the leases and change events of earlier batches, which can fall behind under a write load, do not hold it up.
    // A table reload that keeps failing leaves the node refusing requests until one succeeds (tablesLost).
    let applying: Promise<void> = Promise.resolve();
    // A failure leaves some cache as it was: drop them all rather than serve a stale value.
    const orDropAll = (): void => dropEverything(this);
    await store.watchChanges((keys) => {
      const seals = this.seals;
      let changes: RemoteChanges;
      try {
        changes = dropRemoteChanges(this, keys);
      } catch (err) {
        // What changed is not known, nor reloaded: the tables too may be stale.
        this.tablesLost(err);
        return;
      }
      // A seal meanwhile makes the outcome moot: the unseal has loaded every table anew.
      const reloaded = this.inTablesLine(() => withRetries(changes.reloadTables)).then(
        () => {
          if (changes.allTables && this.seals === seals) this.tablesKnown();
        },
        (err: unknown) => (this.seals === seals ? this.tablesLost(err) : dropEverything(this)),
      );
      applying = Promise.all([applying, reloaded]).then(changes.reloadRest).catch(orDropAll);
      if (changes.holdsRequests) this.holdRequestsUntil(reloaded);
    });
    if (!this.sealed) await this.campaign();
  }

  /**
   * Only an unsealed node campaigns: a sealed leader could not run the jobs it holds the lock for. When the store
   * cannot take part in the election (its lock connection is refused), the node stays unsealed as a standby and
   * keeps trying in the background, as Vault's standbys keep trying to acquire the lock; haStatus() says why.
   */
  private async campaign(): Promise<void> {
    if (!this.cluster || this.sealed) return;
    clearTimeout(this.campaignRetry);
    const seals = this.seals;
    try {
      await this.joinElection(this.cluster);
      this.campaignError = '';
      this.campaignFailures = 0;
    } catch (err) {
      if (this.seals !== seals || this.sealed) return; // sealed meanwhile: the next unseal campaigns afresh
      this.campaignError = err instanceof Error ? err.message : String(err);
      this.campaignFailures++;
      const delay = Math.min(CAMPAIGN_RETRY_MS * 2 ** (this.campaignFailures - 1), CAMPAIGN_RETRY_MAX_MS);
      this.campaignRetry = setTimeout(() => void this.campaign(), delay);
      this.campaignRetry.unref();
    }
  }

  /** On seal: no retry is pending, and nothing failed yet for the next unseal. */
  private stopCampaignRetry(): void {
    clearTimeout(this.campaignRetry);
    this.campaignRetry = undefined;
    this.campaignError = '';
    this.campaignFailures = 0;
  }

  private async joinElection(cluster: { store: SharedStorage; apiAddr: string }): Promise<void> {
    await cluster.store.campaign(cluster.apiAddr, {
      onElected: () => {
        this.leading = true;
        this.leaderSince = new Date();
        if (!this.sealed) {
          this.startBackground().catch(() => {
            // Leading without running the jobs would stall them for every node: step down and let another lead.
            this.leading = false;
            this.stopBackground();
            void this.cluster?.store.resign().then(
              () => this.campaign(),
              () => undefined,
            );
          });
        }
      },
      onLost: () => {
        this.leading = false;
        this.stopBackground();
        this.dropCeremonies();
      },
    });
  }

  /**
   * The other nodes of the cluster seen within `withinMs`: an unsealed node records itself every few seconds, a
   * sealed one (which leaves the election) no longer does. None on a store no other process shares.
   */
  async otherLiveNodes(withinMs: number): Promise<ClusterNode[]> {
    if (!this.cluster?.store.otherProcesses) return [];
    const self = this.cluster.store.nodeId;
    const now = Date.now();
    return (await this.cluster.store.nodes()).filter(
      (node) => node.nodeId !== self && now - node.lastSeen.getTime() < withinMs,
    );
  }

  /** sys/leader and sys/ha-status; `campaignError` is why an unsealed node is not (yet) in the election. */
  async haStatus(): Promise<{
    enabled: boolean;
    leader: boolean;
    leaderSince: Date;
    nodes: ClusterNode[];
    campaignError: string;
  }> {
    const nodes = this.cluster ? await this.cluster.store.nodes() : [];
    const { leading: leader, leaderSince, campaignError } = this;
    return { enabled: this.cluster !== undefined, leader, leaderSince, nodes, campaignError };
  }

  /** Another node rotated the barrier key: the keyring is read again (it is sealed by the same root key). */
  async reloadKeyring(): Promise<void> {
    if (this.rootKey) await this.barrier.unseal(this.rootKey);
  }

  /** Another node changed the mount table: the mounts it added or changed are built, the others kept. */
  async reloadMounts(): Promise<void> {
    if (this.sealed) return;
    await this.mounts.reload();
  }

  /** Forgets the seal configuration read before (another node initialised the store). */
  forgetSealConfig(): void {
    this.sealConfigCache = undefined;
  }

  /**
   * Lease expiry and the backends' schedules. One node runs them: today the only one; with many nodes on one
   * store, the leader.
   */
  private async startBackground(): Promise<void> {
    await this.expiration.start();
    // Sealed, or no longer leader, while the leases loaded: the schedules must not start here.
    if (this.sealed || !this.leading) return this.expiration.stop();
    this.mounts.startBackground();
    this.backgroundRunning = true;
    for (const job of this.backgroundJobs) job.start();
  }

  private stopBackground(): void {
    this.expiration.stop();
    void this.mounts.stopBackground();
    if (this.backgroundRunning) for (const job of this.backgroundJobs) job.stop();
    this.backgroundRunning = false;
  }

  /**
   * Whether this node runs the background jobs now (unsealed, and the leader when nodes share a store): what a
   * part that renews or revokes on a schedule asks before it acts on a change another node made.
   */
  get runsBackground(): boolean {
    return this.backgroundRunning && this.leading && !this.sealed;
  }

  /**
   * A part that is not a mount (the multi-cluster pipeline's credential leases) runs background work with the
   * others: started when this node starts them (at once if it already runs them), stopped on seal or step-down.
   */
  addBackgroundJob(job: BackgroundJob): void {
    this.backgroundJobs.push(job);
    if (this.runsBackground) job.start();
  }

  private systemView(entry: MountEntry): SystemView {
    return {
      generatePassword: (policyName) => this.passwordPolicies.generate(policyName),
      otherWriters: () => this.cluster?.store.otherProcesses ?? false,
      tokenLive: (tokenHash) => this.tokens.stillLive(tokenHash),
      // Read at call time: a remount moves the entry, and the event must name where the mount is now.
      reportChange: async (change, commit) => {
        const entryOf = {
          kind: 'write' as const,
          path: entry.path + change.path,
          aclPath: entry.path + change.aclPath,
          requestPath: entry.path + change.requestPath,
        };
        const log = this.changes.storage;
        if (!commit) {
          await this.changes.append(entryOf);
        } else if (
          commit.storage instanceof StorageView &&
          log instanceof StorageView &&
          commit.storage.sharesStoreWith(log)
        ) {
          const staged = this.changes.stage(entryOf);
          await staged.publish(commit.storage.transactionWith(commit.ops, log, staged.ops));
        } else {
          await commit.storage.transaction(commit.ops);
          await this.changes.append(entryOf);
        }
      },
      leaseTtls: () => {
        const { ttl, maxTtl } = resolveTtl({ ttl: 0, maxTtl: 0 }, entry.config);
        return { defaultTtl: ttl, maxTtl };
      },
    };
  }
}

/** `work`, or a rejection once `ms` have passed without it settling. */
function withinLimit<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done in ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Runs `reload`, and again after each of TABLE_RELOAD_RETRIES_MS while it fails; the last failure is thrown. */
async function withRetries(reload: () => Promise<void>): Promise<void> {
  for (const delay of TABLE_RELOAD_RETRIES_MS) {
    try {
      return await reload();
    } catch {
      await sleep(delay);
    }
  }
  return reload();
}
