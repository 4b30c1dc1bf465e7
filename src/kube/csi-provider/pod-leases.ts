// Dynamic credentials held for the pod they were mounted into. The driver calls Mount when the pod starts and again
// at each rotation poll; without this, each poll would issue a new database user and leave the last one to its
// TTL. So a credential with a lease is kept for its pod: the next Mount of the same object returns the same file
// (no new credential), its lease and the token that issued it are renewed at about two thirds of their TTL, and
// once the pod is gone (the provider asks the API server every `checkEveryMs`) the token is revoked, which revokes
// the leases. A renewal that the max TTL caps marks the object stale: the next Mount issues a new credential, which
// the driver writes into the pod, and the old one ends with its lease.
// The credentials live in this process's memory; a provider that restarts forgets them (they end with their TTL).
import type { VaultClient } from '../../client/client.js';
import { planRenewal, renewLease, renewSelf, RENEW_FRACTION } from '../../client/renewal.js';
import type { MountParameters, SecretObject } from './params.js';

type Log = (level: 'info' | 'warn', msg: string, fields?: object) => void;
export type PodRef = MountParameters['pod'];

/** Whether the pod still exists (the same uid): false once it is deleted. */
export type PodChecker = (pod: PodRef) => Promise<boolean>;

interface HeldToken {
  client: VaultClient;
  token: string;
  ttl: number;
  renewable: boolean;
  timer?: NodeJS.Timeout;
}

interface HeldObject {
  secretPath: string;
  leaseId: string;
  requested: number;
  renewable: boolean;
  expiresAt: number;
  contents: Buffer;
  stale: boolean;
  token: HeldToken;
  timer?: NodeJS.Timeout;
}

interface PodEntry {
  pod: PodRef;
  objects: Map<string, HeldObject>;
}

export class PodLeases {
  private readonly pods = new Map<string, PodEntry>();
  private checker: NodeJS.Timeout | undefined;
  renewals = 0;

  constructor(private readonly opts: { log: Log; podExists?: PodChecker; checkEveryMs?: number }) {
    if (opts.podExists) {
      this.checker = setInterval(() => void this.sweep(), opts.checkEveryMs ?? 30_000);
      this.checker.unref();
    }
  }

  private key(pod: PodRef): string {
    return pod.uid ?? `${pod.namespace}/${pod.name}`;
  }

  /** The file of an object this pod already holds a live credential for; undefined when it must be read. */
  cached(pod: PodRef, object: SecretObject): Buffer | undefined {
    const held = this.pods.get(this.key(pod))?.objects.get(object.objectName);
    if (!held || held.stale || held.secretPath !== object.secretPath) return undefined;
    return held.expiresAt - Date.now() > 2_000 ? held.contents : undefined;
  }

  /** Keeps a credential issued for `pod`, with the token that issued it (both renewed from now on). */
  hold(
    pod: PodRef,
    auth: { client: VaultClient; token: string; ttl: number; renewable: boolean },
    object: SecretObject,
    lease: { id: string; duration: number; renewable: boolean },
    contents: Buffer,
  ): void {
    const key = this.key(pod);
    const entry = this.pods.get(key) ?? { pod, objects: new Map<string, HeldObject>() };
    this.pods.set(key, entry);
    const sameToken = [...entry.objects.values()].find((o) => o.token.token === auth.token)?.token;
    const token = sameToken ?? { ...auth };
    if (!sameToken) this.armToken(token, token.ttl);
    const old = entry.objects.get(object.objectName);
    if (old) clearTimeout(old.timer);
    const held: HeldObject = {
      secretPath: object.secretPath,
      leaseId: lease.id,
      requested: lease.duration,
      renewable: lease.renewable,
      expiresAt: Date.now() + lease.duration * 1000,
      contents,
      stale: false,
      token,
    };
    entry.objects.set(object.objectName, held);
    this.armLease(held, lease.duration);
  }

  private armToken(token: HeldToken, granted: number): void {
    if (token.ttl <= 0) return;
    const step = planRenewal(token.ttl, granted, token.renewable);
    if (step.action !== 'renew') return; // the token ends with its max TTL; its leases were re-issued before that
    token.timer = setTimeout(() => void this.renewToken(token), step.inMs);
    token.timer.unref();
  }

  private async renewToken(token: HeldToken): Promise<void> {
    try {
      this.armToken(
        token,
        await renewSelf(token.client, token.token, token.ttl, 'renewing the token of a mounted credential'),
      );
    } catch (err) {
      this.opts.log('warn', 'renewing the token of a mounted credential failed', { error: (err as Error).message });
    }
  }

  private armLease(held: HeldObject, granted: number): void {
    const step = planRenewal(held.requested, granted, held.renewable);
    if (step.action !== 'renew') {
      // Capped by the max TTL: the next Mount (the driver's rotation poll) issues a new credential.
      held.stale = true;
      return;
    }
    const left = Math.max(0, held.expiresAt - Date.now());
    held.timer = setTimeout(() => void this.renewLease(held), Math.min(step.inMs, Math.floor(left * RENEW_FRACTION)));
    held.timer.unref();
  }

  private async renewLease(held: HeldObject): Promise<void> {
    try {
      const granted = await renewLease(
        held.token.client,
        held.token.token,
        held.leaseId,
        held.requested,
        'renewing the lease of a mounted credential',
      );
      held.expiresAt = Date.now() + granted * 1000;
      this.renewals++;
      this.armLease(held, granted);
    } catch (err) {
      held.stale = true;
      this.opts.log('warn', 'renewing a mounted credential failed; the next mount issues a new one', {
        error: (err as Error).message,
      });
    }
  }

  /** Revokes what deleted pods held: their tokens, and with them their leases. */
  private async sweep(): Promise<void> {
    for (const [key, entry] of this.pods) {
      let exists = true;
      try {
        exists = await this.opts.podExists!(entry.pod);
      } catch (err) {
        this.opts.log('warn', 'could not tell whether a pod still exists', { error: (err as Error).message });
        continue;
      }
      if (exists) continue;
      this.pods.delete(key);
      const tokens = new Set<HeldToken>();
      for (const held of entry.objects.values()) {
        clearTimeout(held.timer);
        tokens.add(held.token);
      }
      for (const token of tokens) {
        clearTimeout(token.timer);
        try {
          await token.client.request('PUT', 'auth/token/revoke-self', {
            body: {},
            token: token.token,
            what: 'revoking the credentials of a deleted pod',
          });
        } catch (err) {
          this.opts.log('warn', 'could not revoke the credentials of a deleted pod', { error: (err as Error).message });
        }
      }
      this.opts.log('info', 'revoked the credentials of a deleted pod', {
        namespace: entry.pod.namespace,
        pod: entry.pod.name,
        objects: entry.objects.size,
      });
    }
  }

  /** How many credentials are held, for the test and the log. */
  size(): number {
    let n = 0;
    for (const e of this.pods.values()) n += e.objects.size;
    return n;
  }

  stop(): void {
    clearInterval(this.checker);
    for (const e of this.pods.values())
      for (const o of e.objects.values()) {
        clearTimeout(o.timer);
        clearTimeout(o.token.timer);
      }
  }
}
