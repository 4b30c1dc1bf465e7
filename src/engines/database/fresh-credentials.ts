import { Connections } from './connections.js';
import type { ConnectionConfig, DynamicRole } from './types.js';

/** What it takes to drop a user creds/ just created: the connection and role as they were when it was created. */
interface Issued {
  config: ConnectionConfig;
  role: DynamicRole;
}

/**
 * The users creds/ is creating, or has created and the core has not yet put under a lease.
 *
 * When the core cannot store the lease (the mount is being disabled, or the server was sealed meanwhile), it
 * revokes the secret at once, passing back the very `internal` object the handler returned. By then the mount's
 * storage may be sealed or deleted and its pools closed, so the revocation cannot read the role or the connection:
 * it uses what is kept here instead, on a connection of its own. Entries are keyed weakly by that object, so they
 * go with the request; nothing here is ever stored.
 *
 * Issuances under way are tracked too: stopping the mount waits for them, so that a user being created is created
 * (or rolled back) before its pool closes, and an unmount does not finish while one of its requests still runs.
 */
export class FreshCredentials {
  private readonly issued = new WeakMap<object, Issued>();
  private readonly running = new Set<Promise<unknown>>();

  /** Runs one creds/ request as an issuance under way. */
  track<T>(issuance: Promise<T>): Promise<T> {
    const settled = issuance.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return issuance;
  }

  /** Resolves once every issuance under way has finished (succeeded or failed). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  remember(internal: object, issued: Issued): void {
    this.issued.set(internal, issued);
  }

  /** What the secret with this `internal` was created with, when it is one being issued by this mount. */
  take(internal: object): Issued | undefined {
    const issued = this.issued.get(internal);
    this.issued.delete(internal);
    return issued;
  }
}

/**
 * Drops a user whose lease could not be stored, on a pool of its own (the mount's may be closed). A rotate-root cut
 * short leaves two candidate passwords for Cofre's own user: the pending one is tried if the current one fails.
 */
export async function dropFresh({ config, role }: Issued, username: string): Promise<void> {
  const passwords = [config.password, ...(config.pending_password ? [config.pending_password] : [])];
  let failure: unknown;
  for (const password of passwords) {
    const driver = Connections.forConfig(config, password);
    try {
      await driver.revokeUser({ statements: role.revocation_statements, username });
      return;
    } catch (err) {
      failure = err;
    } finally {
      await driver.close();
    }
  }
  throw failure;
}
