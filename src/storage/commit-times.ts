/**
 * How long the store takes to commit, for cofre_storage_commit_duration_seconds (src/http/metrics.ts). Each adapter
 * times its own commits: SQLite a group commit's transaction (SQLite's work, the fsync, and a WAL checkpoint when
 * one ran), PostgreSQL a batch's statement (its commit and WAL flush included). A durable write waits for one, so a
 * tail of slow commits is a tail of slow writes that no server thread can shorten: the metric is how an operator
 * tells a disk that stalls from a server that is busy (bench/README.md measured stalls of a tenth of a second and
 * more on a virtual disk).
 */
export type CommitListener = (seconds: number) => void;

export class CommitTimes {
  private readonly listeners: CommitListener[] = [];

  listen(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  observe(seconds: number): void {
    for (const listener of this.listeners) listener(seconds);
  }
}
