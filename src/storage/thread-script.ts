import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The URL of a worker thread's module beside the caller: `.ts` when Cofre runs from source (tsx, whose loader the
 * thread inherits through execArgv), `.js` when it runs from the build.
 */
export function threadScript(callerUrl: string, name: string): URL {
  return new URL(`./${name}${extname(fileURLToPath(callerUrl))}`, callerUrl);
}

/**
 * A worker thread running the module `name` beside the caller. From source on Node 20 a thread does not get the
 * ESM hooks `--import tsx` registers (Node 22 gives them to threads), so there the thread loads its `.ts` module
 * through tsx's CommonJS hooks, which live in the thread itself; such a module must not use top-level await.
 */
export function startThread(callerUrl: string, name: string, options: WorkerOptions): Worker {
  const script = threadScript(callerUrl, name);
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (extname(script.pathname) !== '.ts' || nodeMajor >= 22) return new Worker(script, options);
  const bootstrap = `require('tsx/cjs/api').register(); require(${JSON.stringify(fileURLToPath(script))});`;
  return new Worker(bootstrap, { ...options, eval: true });
}
