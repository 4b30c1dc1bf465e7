/**
 * What the UI's browser tests share: a page that records every exchange, console line and URL of the session, the
 * helpers that drive it as a user does (buttons by name, the confirmation dialog) or check it as assistive
 * technology sees it (every control has a name), the narrow-screen layout check, and the leak check over the
 * recording.
 */
import assert from 'node:assert/strict';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import type { HeadlessBrowser } from './browser.js';

export interface Exchange {
  method: string;
  url: string;
  requestBody: string;
  responseBody: string;
}

export interface RecordedPage {
  context: BrowserContext;
  page: Page;
  /** Every request the page finished, with both bodies. */
  exchanges(): Promise<Exchange[]>;
  consoleLines: string[];
  /** Every URL the page navigated to. */
  visited: string[];
}

/** A 1280×800 page in a fresh context whose whole session is recorded. */
export async function recordedPage(chromium: HeadlessBrowser): Promise<RecordedPage> {
  const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const pending: Promise<Exchange>[] = [];
  const consoleLines: string[] = [];
  const visited: string[] = [];
  page.on('console', (msg) => consoleLines.push(msg.text()));
  page.on('pageerror', (err) => consoleLines.push(`page error: ${err.message}`));
  page.on('framenavigated', (frame) => visited.push(frame.url()));
  page.on('requestfinished', (req) => {
    pending.push(
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
  return { context, page, exchanges: () => Promise.all(pending), consoleLines, visited };
}

/** A button by its exact accessible name. */
export function buttonOn(page: Page, name: string): Locator {
  return page.getByRole('button', { name, exact: true });
}

/** Every control on the page has a name a screen reader can say (a label, aria-label or its own text). */
export async function assertLabelled(page: Page, where: string): Promise<void> {
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('input, textarea, select, button, a[href]')]
      .filter((el) => {
        const labels = (el as HTMLInputElement).labels;
        const named =
          (labels && [...labels].some((l) => l.textContent?.trim())) ||
          el.getAttribute('aria-label')?.trim() ||
          (el.tagName !== 'INPUT' && el.tagName !== 'TEXTAREA' && el.tagName !== 'SELECT' && el.textContent?.trim());
        return !named;
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
  assert.deepEqual(unnamed, [], `unlabelled controls on ${where}`);
}

/** Confirms the open dialog with its button of that name and waits for it to close. */
export async function confirmIn(page: Page, name: string): Promise<void> {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name, exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
}

/** The page never overflows a screen of its width (no horizontal scrolling). */
export async function assertFits(page: Page, where: string): Promise<void> {
  const { overflow, widest } = await page.evaluate(() => ({
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    // The innermost elements that reach past the screen's edge, to say what to fix.
    widest: [...document.querySelectorAll<HTMLElement>('body *')]
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
      .filter((el) => ![...el.children].some((c) => c.getBoundingClientRect().right > window.innerWidth + 0.5))
      .slice(0, 5)
      .map((el) => el.outerHTML.slice(0, 100)),
  }));
  assert.ok(overflow <= 0, `${where} is ${overflow}px wider than the screen: ${widest.join(' | ')}`);
}

/**
 * Whether an exchange may carry a secret in its request (sent) or its response (read). It is asked per secret, so a
 * password may be allowed only in the request that writes it while another value stays out of that one too.
 */
export type LeakAllowance = (e: Exchange, where: 'request' | 'response', secret: string) => boolean;

/**
 * No secret may show up in a URL the page visited or requested, a console line, localStorage or sessionStorage,
 * nor in any exchange other than those `allowed` says may carry it (the request that writes it, the answer that
 * reads it). The page must also have run without a script error or a Content-Security-Policy violation. Failure
 * messages say where a secret was, never which one: they end up in CI logs.
 */
export async function assertNoLeaks(
  recorded: RecordedPage,
  secrets: string[],
  allowed: LeakAllowance,
): Promise<Exchange[]> {
  // An empty value would be "found" everywhere and a missing one nowhere: both mean the test lost track of it.
  for (const secret of secrets) assert.ok(secret.length > 8, 'a value to look for is missing or too short');
  const all = await recorded.exchanges();
  const holds = (text: string) => secrets.some((v) => text.includes(v));
  for (const url of [...recorded.visited, ...all.map((e) => e.url)]) assert.ok(!holds(url), `a value is in URL ${url}`);
  for (const line of recorded.consoleLines) {
    assert.ok(!holds(line), 'a value is in a console line');
    assert.doesNotMatch(line, /Content Security Policy|Refused to|page error/, line);
  }
  const storage = await recorded.page.evaluate(() => ({
    local: JSON.stringify({ ...localStorage }),
    localLength: localStorage.length,
    session: JSON.stringify({ ...sessionStorage }),
  }));
  assert.equal(storage.localLength, 0, `localStorage holds ${storage.local}`);
  assert.ok(!holds(storage.session), 'a value is in sessionStorage');
  for (const e of all) {
    const path = new URL(e.url).pathname;
    for (const secret of secrets) {
      if (!allowed(e, 'request', secret))
        assert.ok(!e.requestBody.includes(secret), `a value was sent in ${e.method} ${path}`);
      if (!allowed(e, 'response', secret))
        assert.ok(!e.responseBody.includes(secret), `a value came back from ${e.method} ${path}`);
    }
  }
  return all;
}
