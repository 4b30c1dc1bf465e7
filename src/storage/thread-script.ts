import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The URL of a worker thread's module beside the caller: `.ts` when Cofre runs from source (tsx, whose loader the
 * thread inherits through execArgv), `.js` when it runs from the build.
 */
export function threadScript(callerUrl: string, name: string): URL {
  return new URL(`./${name}${extname(fileURLToPath(callerUrl))}`, callerUrl);
}
