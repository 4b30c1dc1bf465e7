// The cluster agent's stream against a server that goes away: one that falls silent without closing (a network that
// drops everything, which no FIN or RST ever reports) and one that restarts on the same port. In both the agent must
// notice within a bounded time, reconnect without hammering, and catch up; after the restart, with a KV write made
// right after the unseal. A real server and the agent's own protocol client; between them, for the silent case, a
// TCP relay that can stop passing bytes, as a partitioned network does.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentKeys } from '../src/kube/cluster-agent/keys.js';
import { AgentProtocol, enrol, type DeliveryEvent, type SetEntry } from '../src/kube/cluster-agent/protocol.js';
import { poll } from './poll.js';
import { apiClient, startServer, type InProcessServer } from './support.js';
import { startRelay } from './tcp-relay.js';

/** The server's heartbeat here, and the agent's silence deadline: several heartbeats, as 15 s is to 45 s. */
const HEARTBEAT_MS = 200;
const SILENCE_MS = 1_000;

describe('the cluster agent stream when the server goes away', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cofre-agent-stream-'));
  let server: InProcessServer;
  let keys: AgentKeys;
  let clusterId: string;

  before(async () => {
    server = await startServer({ dir, streamHeartbeatMs: HEARTBEAT_MS });
    let res = await server.api.call('PUT', 'secret/data/app/db', { body: { data: { password: 'first' } } });
    assert.equal(res.status, 200, res.text);
    res = await server.api.call('PUT', 'sys/cofre/clusters/edge', { body: { labels: { site: 'edge' } } });
    assert.equal(res.status, 200, res.text);
    keys = await AgentKeys.generate();
    const pub = { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey };
    ({ cluster_id: clusterId } = await enrol({ address: server.url }, res.body.data.bootstrap_token, pub, 'test/1'));
    res = await server.api.call('PUT', 'sys/cofre/deliveries/app', {
      body: { namespace: 'app', items: [{ name: 'app-db', mode: 'secret', kv: { mount: 'secret', path: 'app/db' } }] },
    });
    assert.equal(res.status, 200, res.text);
    res = await server.api.call('PUT', 'sys/cofre/placements/app', { body: { delivery: 'app', clusters: ['edge'] } });
    assert.equal(res.status, 204, res.text);
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a stream that falls silent is given up after the deadline, and reconnects once bytes flow again', async () => {
    const relay = await startRelay(Number(new URL(server.url).port));
    const protocol = new AgentProtocol({ address: relay.url, clusterId, keys });
    const hellos: SetEntry[][] = [];
    const lost: { at: number; error: string }[] = [];
    const stream = protocol.stream(
      {
        onHello: (set) => hellos.push(set),
        onDelivery: () => undefined,
        log: (msg, fields) => {
          if (msg === 'agent stream disconnected')
            lost.push({ at: Date.now(), error: String((fields as { error?: unknown } | undefined)?.error) });
        },
      },
      { minDelayMs: 100, maxDelayMs: 400, silenceMs: SILENCE_MS },
    );
    try {
      await poll('the first hello', async () => hellos.length === 1);
      // Quiet but alive: only heartbeats come, for several deadlines, and the stream stays.
      await new Promise((r) => setTimeout(r, 3 * SILENCE_MS));
      assert.deepEqual(lost, [], 'heartbeats keep an idle stream');
      assert.equal(hellos.length, 1);

      relay.silent = true;
      const silencedAt = Date.now();
      const first = await poll<{ at: number; error: string }>(
        'the silent stream given up',
        async () => lost[0],
        5 * SILENCE_MS,
        20,
      );
      const noticedAfter = first.at - silencedAt;
      // The deadline counts from the last byte, a heartbeat up to HEARTBEAT_MS before the relay went silent.
      assert.ok(
        noticedAfter >= SILENCE_MS - HEARTBEAT_MS - 50,
        `given up after ${noticedAfter} ms, before the deadline`,
      );
      assert.ok(noticedAfter < SILENCE_MS + 1_500, `given up only after ${noticedAfter} ms`);
      assert.match(first.error, /nothing received for 1 s: the connection is taken as dead/);

      // Attempts meanwhile reach a relay that takes the connection and never answers: each waits out the deadline,
      // so a dead network is not hammered.
      await new Promise((r) => setTimeout(r, 3 * SILENCE_MS));
      const attempts = lost.length;
      assert.ok(attempts >= 2 && attempts <= 4, `${attempts} attempts in ${3 * SILENCE_MS} ms`);

      relay.silent = false;
      await poll('a hello on a new connection', async () => hellos.length === 2, 5 * SILENCE_MS);
      assert.deepEqual(hellos[1], hellos[0]);
    } finally {
      stream.close();
      await relay.close();
    }
  });

  it('a server restart ends the stream; the agent reconnects and catches up with a write made at the unseal', async () => {
    const protocol = new AgentProtocol({ address: server.url, clusterId, keys });
    const hellos: SetEntry[][] = [];
    const events: DeliveryEvent[] = [];
    const lost: string[] = [];
    const stream = protocol.stream(
      {
        onHello: (set) => hellos.push(set),
        onDelivery: (event) => events.push(event),
        log: (msg, fields) => {
          if (msg === 'agent stream disconnected')
            lost.push(String((fields as { error?: unknown } | undefined)?.error));
        },
      },
      { minDelayMs: 50, maxDelayMs: 200, silenceMs: SILENCE_MS },
    );
    try {
      await poll('the first hello', async () => hellos.length === 1);
      const before = hellos[0]!.find((e) => e.delivery === 'app')!.revision;
      const port = Number(new URL(server.url).port);
      const { keys: shares, rootToken } = server;
      await server.stop();
      await poll('the stream ended with the server', async () => lost.length >= 1, 5_000, 10);
      server = await startServer({ dir, port, initialised: false, streamHeartbeatMs: HEARTBEAT_MS });
      for (const key of shares.slice(0, 2)) await server.api.call('PUT', 'sys/unseal', { body: { key } });
      server = { ...server, keys: shares, rootToken, api: apiClient(server.url, rootToken) };
      const res = await server.api.call('PUT', 'secret/data/app/db', { body: { data: { password: 'second' } } });
      assert.equal(res.status, 200, res.text);
      // The new revision comes in the hello of the new connection or as an event on it, whichever is first.
      const latest = (): number =>
        Math.max(
          ...hellos.slice(1).map((set) => set.find((e) => e.delivery === 'app')?.revision ?? 0),
          ...events.filter((e) => e.delivery === 'app').map((e) => e.revision),
          0,
        );
      await poll('the agent told of the new revision', async () => latest() === before + 1, 10_000, 20);
    } finally {
      stream.close();
    }
  });
});
