import { CronExpressionParser } from 'cron-parser';
import type { SystemView } from '../../core/backend.js';
import { notFound } from '../../core/errors.js';
import { changeJson } from '../../core/json-change.js';
import type { Storage } from '../../core/storage.js';
import { getJson } from '../../core/storage-view.js';
import type { Connections } from './connections.js';
import { STATIC_ROLE_PREFIX, type StaticRole } from './types.js';

/** A failed rotation is tried again after this (with the same new password, until one attempt is answered). */
export const RETRY_MS = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When a static role rotates next after `from` (unix ms). */
export function nextRotation(role: Pick<StaticRole, 'rotation_period' | 'rotation_schedule'>, from: number): number {
  if (role.rotation_schedule) {
    return CronExpressionParser.parse(role.rotation_schedule, { currentDate: new Date(from), tz: 'UTC' })
      .next()
      .getTime();
  }
  return from + role.rotation_period * 1000;
}

/**
 * Rotates static roles' passwords: on request (rotate-role, role creation) and on their schedule. Rotations of
 * one role never overlap. The new password is stored as pending before the database is changed, so a crash
 * between the two is finished by the next attempt instead of leaving a password no one knows.
 */
export class StaticRotation {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = false;

  constructor(
    private readonly storage: Storage,
    private readonly connections: Connections,
    private readonly system: SystemView,
  ) {}

  read(name: string): Promise<StaticRole | undefined> {
    return getJson<StaticRole>(this.storage, STATIC_ROLE_PREFIX + name);
  }

  /** Sets a new password now; returns the role as stored afterwards. Throws (and records) a failure. */
  rotate(name: string): Promise<StaticRole> {
    return this.serialize(name, () => this.rotateNow(name));
  }

  /** Runs fn after every earlier rotation or change of the same role: a rotation must not undo an edit. */
  serialize<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(name) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(fn);
    this.locks.set(name, run);
    // Not run.finally(): that would be a second promise carrying the same rejection, which nobody handles.
    const release = (): void => {
      if (this.locks.get(name) === run) this.locks.delete(name);
    };
    run.then(release, release);
    return run;
  }

  /** Starts the schedule of every static role (on the node that runs background jobs). */
  async start(): Promise<void> {
    this.running = true;
    for (const name of await this.storage.list(STATIC_ROLE_PREFIX)) {
      const role = await this.read(name);
      if (role) this.arm(name, role.pending_password ? Date.now() : role.next_rotation);
    }
  }

  stop(): void {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Another node changed or rotated the role: its timer follows what is stored now. */
  async refresh(name: string): Promise<void> {
    if (this.running) this.reschedule(name, await this.read(name));
  }

  /** Deletes a static role (after any rotation under way) and its timer. The database user is left as it is. */
  async remove(name: string): Promise<void> {
    await this.serialize(name, () => this.storage.delete(STATIC_ROLE_PREFIX + name));
    this.reschedule(name, undefined);
  }

  /**
   * Re-arms one role's timer after its definition changed, or drops it when the role is gone. A role with a pending
   * password (a rotation failed, or another node's is under way) is retried soon rather than on its schedule: until
   * an attempt is answered, no one can be sure which password the database has.
   */
  reschedule(name: string, role: StaticRole | undefined): void {
    const timer = this.timers.get(name);
    if (timer) clearTimeout(timer);
    this.timers.delete(name);
    if (role) this.arm(name, role.pending_password ? Date.now() + RETRY_MS : role.next_rotation);
  }

  private arm(name: string, at: number): void {
    if (!this.running) return;
    const delay = Math.max(0, at - Date.now());
    const timer = setTimeout(
      () => {
        if (delay > MAX_TIMER_MS) return this.arm(name, at);
        this.rotate(name).catch(() => {
          // Recorded on the role (last_rotation_error) by rotateNow, which also re-armed the retry.
        });
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(name, timer);
  }

  /**
   * Each step commits on the role as stored then (changeJson), for rotations of one role may overlap across nodes
   * (a rotate-role request on one, the schedule on the node running background jobs): the new password is claimed
   * as pending, and a pending one on record (another node's rotation under way, or a failed one) is used again, so
   * that overlapping rotations set the same password; the rotated role keeps edits made meanwhile, and a role
   * deleted meanwhile is not made again.
   */
  private async rotateNow(name: string): Promise<StaticRole> {
    const key = STATIC_ROLE_PREFIX + name;
    const claimed = await changeJson<StaticRole>(this.storage, key, async (role) => {
      if (!role) throw notFound(`static role "${name}" does not exist`);
      return role.pending_password ? role : { ...role, pending_password: await this.generate(role) };
    });
    const role = claimed!;
    const password = role.pending_password!;
    try {
      await this.connections.use(role.db_name, (driver) =>
        driver.setPassword({ statements: role.rotation_statements, username: role.username, password }),
      );
    } catch (err) {
      const message = (err as Error).message;
      await changeJson<StaticRole>(this.storage, key, (current) =>
        current
          ? { ...current, pending_password: current.pending_password ?? password, last_rotation_error: message }
          : undefined,
      );
      this.reschedule(name, undefined);
      this.arm(name, Date.now() + RETRY_MS);
      throw err;
    }
    // static-creds/<name> now reads another password: its readers (the operator's Secrets) hear it on the change
    // stream, whether a request or the schedule rotated it. Never the password, only where. The role and its
    // change-log entry are one commit, so a crash cannot keep the new password and lose the event.
    const change = {
      path: `static-creds/${name}`,
      aclPath: `static-creds/${name}`,
      requestPath: `rotate-role/${name}`,
    };
    const report = this.system.reportChange?.bind(this.system);
    const now = Date.now();
    let rotated: StaticRole | undefined;
    await changeJson<StaticRole>(
      this.storage,
      key,
      (current) => {
        // Deleted while the database was busy: not brought back.
        if (!current) return (rotated = undefined);
        const { pending_password: pending, ...rest } = current;
        rotated = {
          ...rest,
          // A pending password that is not this one was claimed after this rotation's was settled: it stays.
          ...(pending !== undefined && pending !== password ? { pending_password: pending } : {}),
          password,
          last_vault_rotation: now,
          next_rotation: nextRotation(current, now),
          last_rotation_error: '',
        };
        return rotated;
      },
      (ops) => (report ? report(change, { storage: this.storage, ops }) : this.storage.transaction(ops)),
    );
    this.reschedule(name, rotated);
    return rotated ?? { ...role, password };
  }

  private async generate(role: StaticRole): Promise<string> {
    const config = await this.connections.read(role.db_name);
    return this.system.generatePassword(config?.password_policy || undefined);
  }
}
