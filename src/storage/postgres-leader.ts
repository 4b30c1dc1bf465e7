/**
 * Leadership among nodes sharing a PostgreSQL store, and the registry of those nodes.
 *
 * The leader is whoever holds a session-level advisory lock. PostgreSQL releases it when the holding connection
 * ends for any reason — a clean close, pg_terminate_backend, or the kernel closing the socket of a SIGKILLed
 * process — so another node, polling pg_try_advisory_lock every second, takes over within a second or two. The
 * lock lives on a client of its own: a pooled connection would hand the lock to whatever query borrowed it next.
 */
import pg from 'pg';
import type { ClusterNode } from '../core/storage.js';
import { backoff, connectClient, dedicatedClient, type Connection } from './postgres-connection.js';

const TICK_MS = 1000;
/** The registry is written every other tick: "seen in the last minute" needs far less, sys/ha-status no more. */
const HEARTBEAT_TICKS = 2;
/** Longer than this without an answer and the leader assumes its lock connection is gone. */
const QUERY_TIMEOUT_MS = 2000;
/**
 * A leader whose lock connection failed waits this long before campaigning again, so that a node polling every
 * tick takes over: the failure more likely lies with the old leader (its network, its host) than with the others.
 */
const HOLD_OFF_MS = 2 * TICK_MS;
const NODE_TTL = "interval '60 seconds'";
/** Rows of nodes gone for this long are deleted by the leader (pods come and go with new names). */
const NODE_FORGET = "interval '1 hour'";
/**
 * A leader cut off by the network leaves its lock held until the server notices the dead socket; by default the
 * server's kernel waits two hours. These session settings make the server give up on it within about 5 s.
 */
const SERVER_SIDE_TIMEOUTS =
  'SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3; ' +
  'SET tcp_user_timeout = 5000';

export interface LeaderEvents {
  onElected(): void;
  onLost(): void;
}

export interface CampaignOptions {
  conn: Connection;
  nodesTable: string;
  lockKey: string;
  nodeId: string;
  apiAddr: string;
  events: LeaderEvents;
}

export class Campaign {
  private client: pg.Client | undefined;
  private leader = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private ticks = 0;
  private holdOffUntil = 0;

  constructor(private readonly opts: CampaignOptions) {}

  /** Connects (failing with the reason if it cannot) and makes the first attempt at once. */
  async start(): Promise<void> {
    this.client = await this.connect();
    await this.run();
  }

  /** Stops campaigning; a leader steps down (onLost) before its lock is released. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const client = this.client;
    this.client = undefined;
    this.stepDown();
    await client?.end().catch(() => {});
  }

  private run(): Promise<void> {
    this.running = this.tick();
    return this.running;
  }

  private async tick(): Promise<void> {
    try {
      const client = this.client ?? (await this.connect());
      this.client = client;
      if (!this.leader && Date.now() >= this.holdOffUntil) await this.tryLead(client);
      else await client.query('SELECT 1');
      if (this.ticks++ % HEARTBEAT_TICKS === 0) await this.heartbeat(client, this.leader);
      this.failures = 0;
    } catch {
      this.failures++;
      if (this.client) this.gone(this.client);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), this.failures > 0 ? backoff(this.failures) : TICK_MS);
    this.timer.unref();
  }

  private async tryLead(client: pg.Client): Promise<void> {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
      this.opts.lockKey,
    ]);
    if (!rows[0]?.ok) return;
    // Recorded before anyone is told, so that sys/leader names this node as soon as it acts as leader. If that
    // fails, the tick drops the connection, which releases the lock again.
    await this.heartbeat(client, true);
    if (this.client !== client || this.stopped) return;
    this.leader = true;
    call(this.opts.events.onElected);
  }

  private async heartbeat(client: pg.Client, leader: boolean): Promise<void> {
    const { nodesTable: t, nodeId, apiAddr } = this.opts;
    // The leader also clears the flag a crashed leader left behind, and forgets long-gone nodes.
    const leaderChores = leader
      ? `WITH others AS (UPDATE ${t} SET leader = false
           WHERE leader AND node_id <> $1 AND last_seen >= now() - ${NODE_FORGET}),
         forgotten AS (DELETE FROM ${t} WHERE last_seen < now() - ${NODE_FORGET} AND node_id <> $1) `
      : '';
    await client.query(
      `${leaderChores}INSERT INTO ${t} (node_id, api_addr, last_seen, leader) VALUES ($1, $2, now(), $3)
       ON CONFLICT (node_id) DO UPDATE SET api_addr = excluded.api_addr, last_seen = excluded.last_seen,
         leader = excluded.leader`,
      [nodeId, apiAddr, leader],
    );
  }

  private async connect(): Promise<pg.Client> {
    const { conn, nodeId } = this.opts;
    const client: pg.Client = dedicatedClient(conn, `cofre leader ${nodeId}`, QUERY_TIMEOUT_MS, () =>
      this.gone(client),
    );
    await connectClient(conn, client);
    // Best effort: a server too old for one of these still elects; it only notices a cut-off leader later.
    await client.query(SERVER_SIDE_TIMEOUTS).catch(() => {});
    return client;
  }

  /** The lock connection failed or ended: whatever it held is released by the server. */
  private gone(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => {});
    this.stepDown();
  }

  private stepDown(): void {
    if (!this.leader) return;
    this.leader = false;
    this.holdOffUntil = Date.now() + HOLD_OFF_MS;
    call(this.opts.events.onLost);
  }
}

/** A throwing handler must not stop the campaign: the lock would stay held by a node that no longer acts on it. */
function call(handler: () => void): void {
  try {
    handler();
  } catch {
    // The handler's own error reporting is its business.
  }
}

export async function listNodes(db: pg.Pool, nodesTable: string): Promise<ClusterNode[]> {
  const { rows } = await db.query<{ node_id: string; api_addr: string; last_seen: Date; leader: boolean }>(
    `SELECT node_id, api_addr, last_seen, leader FROM ${nodesTable}
     WHERE last_seen >= now() - ${NODE_TTL} ORDER BY node_id`,
  );
  return rows.map((r) => ({ nodeId: r.node_id, apiAddr: r.api_addr, lastSeen: r.last_seen, leader: r.leader }));
}

export async function forgetNode(db: pg.Pool, nodesTable: string, nodeId: string): Promise<void> {
  await db.query(`DELETE FROM ${nodesTable} WHERE node_id = $1`, [nodeId]);
}
