// One worker process of bench/clusters-fanout.ts: many simulated cluster agents, each speaking the real protocol
// with its own keys (src/kube/cluster-agent/protocol.ts). Started with an IPC channel; the parent sends
//   {type: 'start', agents: [{name, address, bootstrapToken}], concurrency}
// and gets back {type: 'ready', connected} once every agent has enrolled, logged in and seen its stream's hello,
// then {type: 'acks', acks: [[index, revision, at]]} (batched) each time an agent has fetched, opened and reported a
// revision, and {type: 'error', message} for anything that went wrong (the parent fails the run on it).
import { AgentKeys } from '../src/kube/cluster-agent/keys.js';
import {
  AgentProtocol,
  enrol,
  openFetched,
  type AgentStream,
  type SetEntry,
} from '../src/kube/cluster-agent/protocol.js';

interface AgentSpec {
  index: number;
  name: string;
  address: string;
  bootstrapToken: string;
}

type Message = { type: 'start'; agents: AgentSpec[]; concurrency: number } | { type: 'stop' };

const send = (message: unknown): void => {
  process.send!(message);
};

let pendingAcks: [number, number, number][] = [];
let flushScheduled = false;
function ack(index: number, revision: number): void {
  pendingAcks.push([index, revision, Date.now()]);
  if (flushScheduled) return;
  flushScheduled = true;
  setTimeout(() => {
    flushScheduled = false;
    send({ type: 'acks', acks: pendingAcks });
    pendingAcks = [];
  }, 5);
}

/** One simulated cluster: its own keys, enrolment, token, stream; it applies each revision once, in order. */
class SimulatedAgent {
  private protocol: AgentProtocol | undefined;
  private stream: AgentStream | undefined;
  /** delivery → revision applied (and reported). */
  private readonly applied = new Map<string, number>();
  /** delivery → newest revision announced. */
  private readonly wanted = new Map<string, number>();
  private work: Promise<void> = Promise.resolve();

  constructor(private readonly spec: AgentSpec) {}

  async start(): Promise<void> {
    const keys = await AgentKeys.generate();
    const { address } = this.spec;
    const { cluster_id } = await enrol(
      { address },
      this.spec.bootstrapToken,
      { sealingPublicKey: keys.sealingPublicKey, signingPublicKey: keys.signingPublicKey },
      'bench',
    );
    this.protocol = new AgentProtocol({ address, clusterId: cluster_id, keys });
    await this.protocol.login();
    await new Promise<void>((resolve) => {
      this.stream = this.protocol!.stream({
        onHello: (set) => {
          resolve();
          this.onSet(set);
        },
        onDelivery: (event) => this.announce(event.delivery, event.revision),
        log: (message, fields) =>
          send({ type: 'log', message: `${this.spec.name}: ${message} ${JSON.stringify(fields)}` }),
      });
    });
  }

  stop(): void {
    this.stream?.close();
  }

  private onSet(set: SetEntry[]): void {
    for (const entry of set) this.announce(entry.delivery, entry.revision);
  }

  private announce(delivery: string, revision: number): void {
    if ((this.wanted.get(delivery) ?? -1) >= revision && revision !== 0) return;
    this.wanted.set(delivery, revision);
    this.work = this.work
      .then(() => this.catchUp(delivery))
      .catch((err: unknown) => {
        send({ type: 'error', message: `${this.spec.name} ${delivery}: ${(err as Error).message}` });
      });
  }

  /** Brings one delivery to the newest announced revision: fetch, open with its own key, report. */
  private async catchUp(delivery: string): Promise<void> {
    const protocol = this.protocol!;
    const wanted = this.wanted.get(delivery) ?? 0;
    const applied = this.applied.get(delivery) ?? 0;
    if (wanted === applied) return;
    let revision = 0;
    if (wanted > 0) {
      const fetched = await protocol.fetchBundle(delivery);
      // As the real agent does: the namespace is the one the server sent, bound into the bundle's sealing.
      const payload = await openFetched(
        protocol.config.clusterId,
        protocol.config.keys,
        { delivery, namespace: fetched.namespace, minRevision: Math.max(wanted, applied + 1) },
        fetched,
      );
      if (payload.objects.length === 0) throw new Error('empty payload');
      revision = fetched.revision;
    }
    this.applied.set(delivery, revision);
    const deliveries: Record<string, { revision: number; applied_at: string; pods: Record<string, number> }> = {};
    for (const [name, rev] of this.applied) {
      if (rev > 0) deliveries[name] = { revision: rev, applied_at: new Date().toISOString(), pods: {} };
    }
    await protocol.report({ agent_version: 'bench', health: 'ok', deliveries });
    ack(this.spec.index, revision);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const agents: SimulatedAgent[] = [];
process.on('message', (message: Message) => {
  if (message.type === 'stop') {
    for (const agent of agents) agent.stop();
    setTimeout(() => process.exit(0), 100);
    return;
  }
  void pool(message.agents, message.concurrency, async (spec) => {
    const agent = new SimulatedAgent(spec);
    agents.push(agent);
    await agent.start();
  }).then(
    () => send({ type: 'ready', connected: agents.length }),
    (err: unknown) => send({ type: 'error', message: `start: ${(err as Error).message}` }),
  );
});
process.on('disconnect', () => process.exit(0));
