import type { Rekey, RekeyResult, RekeyStatus, RekeyVerifyStatus } from './rekey.js';
import type { RootGeneration, RootGenerationStatus } from './root-generation.js';

/**
 * sys/generate-root and sys/rekey as their paths call them. An attempt lives in memory in one place (as Vault's,
 * on its active node), and the operators' shares come on connections of their own: the kernel hands them to any
 * thread of a server (src/workers/), a load balancer to any node of a cluster. The first thread of a server holds
 * the attempts, and the others forward every call to it (forwardedCeremonies); of nodes sharing PostgreSQL, the
 * leader's first thread holds them, and the other nodes forward to it over HTTP (ceremony-forwarding.ts).
 */
export interface KeyCeremonies {
  rootGeneration: {
    status(): Promise<RootGenerationStatus>;
    start(opts: { otp?: string; pgpKey?: string }): Promise<RootGenerationStatus>;
    cancel(): Promise<void>;
    update(key: Buffer, nonce: string): Promise<RootGenerationStatus>;
  };
  rekey: {
    status(): Promise<RekeyStatus>;
    start(opts: RekeyStart): Promise<RekeyStatus>;
    cancel(): Promise<void>;
    update(key: Buffer, nonce: string): Promise<RekeyStatus | RekeyResult>;
    verifyStatus(): Promise<RekeyVerifyStatus>;
    verify(key: Buffer, nonce: string): Promise<RekeyVerifyStatus | { nonce: string; complete: true }>;
    restartVerification(): Promise<RekeyVerifyStatus>;
  };
}

export type RekeyStart = Parameters<Rekey['start']>[0];

/** One call, as it crosses from a thread to the one holding the attempts (a key share as bytes). */
export type CeremonyCall =
  | { op: 'root.status' | 'root.cancel' }
  | { op: 'root.start'; opts: { otp?: string; pgpKey?: string } }
  | { op: 'root.update' | 'rekey.update' | 'rekey.verify'; key: Uint8Array; nonce: string }
  | { op: 'rekey.status' | 'rekey.cancel' | 'rekey.verifyStatus' | 'rekey.restartVerification' }
  | { op: 'rekey.start'; opts: RekeyStart };

/** The attempts of this thread. */
export function localCeremonies(root: RootGeneration, rekey: Rekey): KeyCeremonies {
  return {
    rootGeneration: {
      status: () => root.status(),
      start: (opts) => root.start(opts),
      cancel: async () => root.cancel(),
      update: (key, nonce) => root.update(key, nonce),
    },
    rekey: {
      status: () => rekey.status(),
      start: (opts) => rekey.start(opts),
      cancel: async () => rekey.cancel(),
      update: (key, nonce) => rekey.update(key, nonce),
      verifyStatus: async () => rekey.verifyStatus(),
      verify: (key, nonce) => rekey.verify(key, nonce),
      restartVerification: async () => rekey.restartVerification(),
    },
  };
}

/** The attempts of another thread, reached through `forward` (which keeps an error's HTTP status). */
export function forwardedCeremonies(forward: (call: CeremonyCall) => Promise<unknown>): KeyCeremonies {
  const send = <T>(call: CeremonyCall): Promise<T> => forward(call) as Promise<T>;
  const bytes = (key: Buffer): Uint8Array => new Uint8Array(key);
  return {
    rootGeneration: {
      status: () => send({ op: 'root.status' }),
      start: (opts) => send({ op: 'root.start', opts }),
      cancel: () => send({ op: 'root.cancel' }),
      update: (key, nonce) => send({ op: 'root.update', key: bytes(key), nonce }),
    },
    rekey: {
      status: () => send({ op: 'rekey.status' }),
      start: (opts) => send({ op: 'rekey.start', opts }),
      cancel: () => send({ op: 'rekey.cancel' }),
      update: (key, nonce) => send({ op: 'rekey.update', key: bytes(key), nonce }),
      verifyStatus: () => send({ op: 'rekey.verifyStatus' }),
      verify: (key, nonce) => send({ op: 'rekey.verify', key: bytes(key), nonce }),
      restartVerification: () => send({ op: 'rekey.restartVerification' }),
    },
  };
}

/** Runs a forwarded call on the thread that holds the attempts. */
export function runCeremonyCall(here: KeyCeremonies, call: CeremonyCall): Promise<unknown> {
  const { rootGeneration: root, rekey } = here;
  switch (call.op) {
    case 'root.status':
      return root.status();
    case 'root.start':
      return root.start(call.opts);
    case 'root.cancel':
      return root.cancel();
    case 'root.update':
      return root.update(Buffer.from(call.key), call.nonce);
    case 'rekey.status':
      return rekey.status();
    case 'rekey.start':
      return rekey.start(call.opts);
    case 'rekey.cancel':
      return rekey.cancel();
    case 'rekey.update':
      return rekey.update(Buffer.from(call.key), call.nonce);
    case 'rekey.verifyStatus':
      return rekey.verifyStatus();
    case 'rekey.verify':
      return rekey.verify(Buffer.from(call.key), call.nonce);
    case 'rekey.restartVerification':
      return rekey.restartVerification();
  }
}
