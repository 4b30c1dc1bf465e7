/**
 * Headless Chromium for the UI's browser tests and benchmark: Debian's `chromium` driven by playwright-core (which
 * downloads no browser). The flags keep it off the network (only loopback is reachable here); playwright starts it
 * on an empty profile of its own in a temporary directory, which it removes on close.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { uiBuilt } from '../src/http/ui.js';

export const CHROMIUM = process.env.COFRE_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface HeadlessBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** `args`: more Chromium flags (e.g. --host-resolver-rules, to give loopback another name). */
export async function launchChromium(args: readonly string[] = []): Promise<HeadlessBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does), or set COFRE_CHROMIUM`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...args] });
  return { browser, close: () => browser.close() };
}

/** The UI's build (web/dist): `npm test` builds it first; a test file run on its own builds it when missing. */
export function ensureUiBuilt(): void {
  if (uiBuilt()) return;
  const build = spawnSync('npm', ['run', 'build', '-w', 'web'], { stdio: 'inherit' });
  if (build.status !== 0 || !uiBuilt()) throw new Error('the web UI did not build (npm run build -w web)');
}
