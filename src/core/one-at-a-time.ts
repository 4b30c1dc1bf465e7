/**
 * Runs the tasks given to it one after another, each once the one before it settled (whether it failed or not):
 * for changes to a table that each read what the one before left (the mount tables, the audit table).
 */
export class OneAtATime {
  private last: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.last.then(task, task);
    this.last = result.catch(() => undefined);
    return result;
  }
}
