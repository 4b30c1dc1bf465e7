// The cluster agent's loop, between the protocol client (src/kube/cluster-agent/protocol.ts, being built alongside:
// login, the stream, fetch, report) and the cluster: what to do on the stream's `hello` and on each change, and what
// to report. The protocol client feeds it events and hands it a way to fetch a delivery's bundle; this file opens
// the bundle just in time with the agent's own keys, under the binding it expects, and applies or removes.
//
// - `hello` carries the full set of deliveries this cluster should hold: each is brought to its revision, and every
//   delivery found in the cluster (by its labels, see inventory.ts) that is not in the set is removed. That is the
//   catch-up after a lost connection, a server restart or an agent restart (which keeps no state of its own).
// - A change `{delivery, revision}` applies that revision, or removes the delivery when the revision is 0.
// - A bundle is never applied at a revision lower than one already applied or announced: a replayed older bundle is
//   refused; so is any bundle that does not open under (cluster id, delivery, namespace, revision).
//
// Work runs one step at a time, in arrival order. Errors are kept per delivery for the report; they name objects and
// fields, never a value (a payload that is not JSON is reported as such, without the parser's excerpt of it).
import type { KubeConfig } from '@kubernetes/client-node';
import { DeliveryError, type DeliveryApplier } from './apply.js';
import { deliveredHere } from './inventory.js';
import type { AgentKeys } from './keys.js';
import type { LifecycleMap, LifecycleReader } from './lifecycle.js';
import { inPodNotes } from './manifest.js';
import { parsePayload, PayloadError, type RolloutTarget } from './payload.js';
import type { DeliveryReport, FetchedBundle } from './protocol.js';

/** One entry of the stream: a delivery's current revision for this cluster, 0 meaning "remove it". */
export interface DeliveryRef {
  delivery: string;
  revision: number;
}

export interface AgentLoopDeps {
  clusterId: string;
  keys: AgentKeys;
  applier: DeliveryApplier;
  lifecycle: LifecycleReader;
  /** Fetches the bundle of one delivery for this cluster (the protocol client). */
  fetchBundle: (delivery: string) => Promise<FetchedBundle>;
  /** Where deliveredHere looks for what was delivered before (the agent's own kubeconfig). */
  kubeConfig: KubeConfig;
  /** The namespaces the agent may list in, when its RBAC is not cluster-wide. */
  namespaces?: string[];
  log?: (msg: string, fields?: object) => void;
}

interface Held {
  /** Namespaces its objects may be in (more than one only while it moves). */
  namespaces: Set<string>;
  revision: number;
  appliedAt?: string;
  rollout: RolloutTarget[];
  error?: string;
  /** What the report says besides errors: items written other than as they were asked for. */
  notes?: string[];
}

// The notes are built beside the objects they describe (manifest.ts); tests and callers still find them here.
export { inPodNotes };

export class AgentLoop {
  private readonly held = new Map<string, Held>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AgentLoopDeps) {}

  /** The stream's `hello`: bring every listed delivery to its revision and remove every other one found here. */
  hello(set: DeliveryRef[]): Promise<void> {
    return this.serial(async () => {
      const wanted = new Map(set.filter((r) => r.revision > 0).map((r) => [r.delivery, r.revision]));
      const here = await deliveredHere(this.deps.kubeConfig, this.deps.namespaces);
      for (const found of here) {
        const held = this.held.get(found.delivery);
        if (held) held.namespaces.add(found.namespace);
        else
          this.held.set(found.delivery, {
            namespaces: new Set([found.namespace]),
            revision: found.revision,
            rollout: [],
          });
      }
      for (const delivery of [...this.held.keys()]) if (!wanted.has(delivery)) await this.remove(delivery);
      for (const [delivery, revision] of wanted) await this.sync(delivery, revision);
    });
  }

  /** One change event. */
  change(ref: DeliveryRef): Promise<void> {
    return this.serial(() => (ref.revision === 0 ? this.remove(ref.delivery) : this.sync(ref.delivery, ref.revision)));
  }

  /** The `deliveries` of a report, with each delivery's lifecycle map read now. */
  async report(): Promise<Record<string, DeliveryReport>> {
    const out: Record<string, DeliveryReport> = {};
    for (const [delivery, held] of this.held) {
      const namespace = [...held.namespaces][0];
      let pods: LifecycleMap = {};
      let error = held.error;
      try {
        if (namespace) pods = await this.deps.lifecycle.read(namespace, held.rollout);
      } catch (err) {
        error ??= (err as Error).message;
      }
      out[delivery] = { revision: held.revision, pods };
      if (held.appliedAt) out[delivery].applied_at = held.appliedAt;
      if (error) out[delivery].error = error;
      if (held.notes?.length) out[delivery].notes = held.notes;
    }
    return out;
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async sync(delivery: string, revision: number): Promise<void> {
    const held = this.held.get(delivery);
    if (held && !held.error && held.appliedAt && held.revision >= revision) return;
    try {
      const fetched = await this.deps.fetchBundle(delivery);
      if (fetched.delivery !== delivery) throw new DeliveryError(`asked for delivery ${delivery}, got another`);
      const floor = Math.max(revision, held?.revision ?? 0);
      if (!Number.isSafeInteger(fetched.revision) || fetched.revision < floor)
        throw new DeliveryError(`delivery ${delivery}: revision ${fetched.revision} is older than ${floor}; refused`);
      const { namespace } = fetched;
      let plain: Uint8Array;
      try {
        plain = await this.deps.keys.open(
          { clusterId: this.deps.clusterId, delivery, namespace, revision: fetched.revision },
          fetched.bundle,
        );
      } catch {
        throw new DeliveryError(
          `delivery ${delivery}: the bundle of revision ${fetched.revision} does not open for this cluster ` +
            `(sealed to another cluster, delivery, namespace or revision, or changed)`,
        );
      }
      let payload;
      try {
        payload = parsePayload(JSON.parse(Buffer.from(plain).toString('utf8')));
      } catch (err) {
        // JSON.parse quotes the text it fails on: never pass its message on.
        throw new DeliveryError(
          `delivery ${delivery}: ${err instanceof PayloadError ? err.message : 'the payload is not JSON'}`,
        );
      } finally {
        plain.fill(0);
      }
      await this.deps.applier.apply(delivery, namespace, fetched.revision, payload);
      // Moved to another namespace: what the older revision left in the old one goes.
      for (const old of held?.namespaces ?? []) if (old !== namespace) await this.deps.applier.remove(delivery, old);
      this.held.set(delivery, {
        namespaces: new Set([namespace]),
        revision: fetched.revision,
        appliedAt: new Date().toISOString(),
        rollout: payload.rollout,
        notes: inPodNotes(namespace, payload),
      });
    } catch (err) {
      const message = err instanceof DeliveryError ? err.message : `delivery ${delivery}: ${(err as Error).message}`;
      this.deps.log?.('delivery failed', { delivery, revision, error: message });
      if (held) held.error = message;
      else this.held.set(delivery, { namespaces: new Set(), revision: 0, rollout: [], error: message });
    }
  }

  private async remove(delivery: string): Promise<void> {
    const held = this.held.get(delivery);
    try {
      for (const namespace of held?.namespaces ?? []) await this.deps.applier.remove(delivery, namespace);
      this.held.delete(delivery);
    } catch (err) {
      const message = err instanceof DeliveryError ? err.message : `delivery ${delivery}: ${(err as Error).message}`;
      this.deps.log?.('removing a delivery failed', { delivery, error: message });
      if (held) held.error = message;
    }
  }
}
