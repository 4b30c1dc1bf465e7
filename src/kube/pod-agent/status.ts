// The agent's state for people and probes, in a JSON file: per item its last render, its lease's renewals and its
// last error; the token's logins and renewals. Never a value, a token or a lease id (a lease id names a credential's
// user on some databases): only names, paths, counts and times.
import type { Item } from './config.js';
import { writeFileAtomic } from './atomic-write.js';

export interface ItemState {
  name: string;
  source: string;
  file?: string;
  renders: number;
  lastRender?: string;
  /** The KV version last rendered. */
  version?: number;
  leaseRenewals: number;
  leaseReissues: number;
  leaseExpiresAt?: string;
  lastError?: string;
}

export class AgentStatus {
  readonly items = new Map<string, ItemState>();
  started = new Date().toISOString();
  changeStreamConnected = false;
  signals = 0;
  lastSignalError: string | undefined;

  constructor(
    items: Item[],
    private readonly file: string | undefined,
    private readonly token: () => { logins: number; renewals: number; lastError?: string },
  ) {
    for (const item of items) {
      this.items.set(item.name, {
        name: item.name,
        source: item.source.path,
        ...(item.output.kind === 'file' ? { file: item.output.path } : {}),
        renders: 0,
        leaseRenewals: 0,
        leaseReissues: 0,
      });
    }
  }

  item(name: string): ItemState {
    return this.items.get(name)!;
  }

  snapshot(): object {
    const token = this.token();
    return {
      started: this.started,
      token: {
        logins: token.logins,
        renewals: token.renewals,
        ...(token.lastError ? { lastError: token.lastError } : {}),
      },
      changeStreamConnected: this.changeStreamConnected,
      signals: this.signals,
      ...(this.lastSignalError ? { lastSignalError: this.lastSignalError } : {}),
      items: [...this.items.values()],
    };
  }

  private saving: Promise<void> = Promise.resolve();

  /**
   * Best effort: a status file that cannot be written is no reason to stop delivering secrets. Writes run one after
   * another, each taking its snapshot when it starts, so an older state never lands after a newer one.
   */
  save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    this.saving = this.saving.then(() =>
      writeFileAtomic(file, `${JSON.stringify(this.snapshot(), null, 2)}\n`, 0o644).catch(() => undefined),
    );
    return this.saving;
  }
}
