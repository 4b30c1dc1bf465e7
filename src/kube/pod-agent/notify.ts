// Telling the application that a file changed: a signal to a process found by its pid file or its name (the pod
// then needs `shareProcessNamespace: true`, as the agent runs in a container of its own).
import { readdir, readFile } from 'node:fs/promises';
import type { OnChange } from './config.js';

export class NotifyError extends Error {}

async function pidsNamed(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === name) pids.push(Number(entry));
  }
  return pids;
}

/** Sends the configured signal; returns the pids signalled. */
export async function signalApplication(onChange: OnChange): Promise<number[]> {
  if (!onChange.signal) return [];
  let pids: number[];
  if (onChange.pidFile) {
    let text: string;
    try {
      text = (await readFile(onChange.pidFile, 'utf8')).trim();
    } catch (err) {
      throw new NotifyError(`cannot read the pid file ${onChange.pidFile} (${(err as NodeJS.ErrnoException).code})`);
    }
    if (!/^\d+$/.test(text)) throw new NotifyError(`the pid file ${onChange.pidFile} holds no process id`);
    pids = [Number(text)];
  } else {
    pids = await pidsNamed(onChange.processName!);
    if (pids.length === 0) throw new NotifyError(`no process named "${onChange.processName}" is running`);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, onChange.signal);
    } catch (err) {
      throw new NotifyError(
        `sending ${onChange.signal} to process ${pid} failed (${(err as NodeJS.ErrnoException).code})`,
      );
    }
  }
  return pids;
}
