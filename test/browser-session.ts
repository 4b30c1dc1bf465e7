/**
 * What the UI's browser tests share: a page at 1280x800 whose every request and response, console line and visited
 * URL is recorded (for the leak checks), and the helpers that drive it as a user does (buttons by name, the
 * confirmation dialog) or check it as assistive technology sees it (every control has a name).
 */
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';

export interface Exchange {
  method: string;
  url: string;
  requestBody: string;
  responseBody: string;
}

export interface RecordedPage {
  context: BrowserContext;
  page: Page;
  /** Every finished request with its response body (awaited at the end: bodies arrive late). */
  exchanges: Promise<Exchange>[];
  consoleLines: string[];
  visited: string[];
  /** A button by its exact accessible name. */
  button(name: string): Locator;
  /** Fails unless every control on the page has a name a screen reader can say. */
  assertLabelled(where: string): Promise<void>;
  /** Clicks the named button of the open confirmation dialog and waits for the dialog to close. */
  confirmIn(name: string): Promise<void>;
  /** What the page keeps in localStorage and sessionStorage. */
  storage(): Promise<{ local: string; localLength: number; session: string }>;
  close(): Promise<void>;
}

export async function recordedPage(browser: Browser): Promise<RecordedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const exchanges: Promise<Exchange>[] = [];
  const consoleLines: string[] = [];
  const visited: string[] = [];
  page.on('console', (msg) => consoleLines.push(msg.text()));
  page.on('pageerror', (err) => consoleLines.push(`page error: ${err.message}`));
  page.on('framenavigated', (frame) => visited.push(frame.url()));
  page.on('requestfinished', (req) => {
    exchanges.push(
      (async () => ({
        method: req.method(),
        url: req.url(),
        requestBody: req.postData() ?? '',
        responseBody: await req
          .response()
          .then((res) => res?.text() ?? '')
          .catch(() => ''),
      }))(),
    );
  });
  return {
    context,
    page,
    exchanges,
    consoleLines,
    visited,
    button: (name) => page.getByRole('button', { name, exact: true }),
    async assertLabelled(where) {
      const unnamed = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>('input, textarea, select, button, a[href]')]
          .filter((el) => {
            const labels = (el as HTMLInputElement).labels;
            const named =
              (labels && [...labels].some((l) => l.textContent?.trim())) ||
              el.getAttribute('aria-label')?.trim() ||
              (el.tagName !== 'INPUT' &&
                el.tagName !== 'TEXTAREA' &&
                el.tagName !== 'SELECT' &&
                el.textContent?.trim());
            return !named;
          })
          .map((el) => el.outerHTML.slice(0, 120)),
      );
      assert.deepEqual(unnamed, [], `unlabelled controls on ${where}`);
    },
    async confirmIn(name) {
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      await dialog.getByRole('button', { name, exact: true }).click();
      await dialog.waitFor({ state: 'hidden' });
    },
    storage: () =>
      page.evaluate(() => ({
        local: JSON.stringify({ ...localStorage }),
        localLength: localStorage.length,
        session: JSON.stringify({ ...sessionStorage }),
      })),
    close: () => context.close(),
  };
}

/** The page ran under its Content-Security-Policy without breaking it, and without script errors. */
export function assertCleanConsole(lines: string[]): void {
  for (const line of lines) assert.doesNotMatch(line, /Content Security Policy|Refused to|page error/, line);
}
