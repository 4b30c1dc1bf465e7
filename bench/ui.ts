// Web UI benchmark (issue 14): the production bundle's size, and the time to first render of the secrets page.
//
//   npm run bench:ui        (builds first; or node --import tsx bench/ui.ts on a fresh build)
//
// Size: every file of web/dist as served, raw and gzipped (zlib's default level, as a proxy in front would send it).
// Render: a real in-process server (SQLite file) serving the build, a folder of 50 secrets, and Debian's Chromium
// driven headless by playwright-core. Each run opens a new browser context (empty cache, a signed-in tab: the
// token is put in session storage before the page loads) at /ui/secrets/secret/bench/ and times, from the start
// of navigation, until the folder's listing is on screen (the mount lookup and the LIST answered and rendered).
// The browser's own first contentful paint (the page's frame before data) is reported beside it.
//
// Options (environment): BENCH_RUNS (15).
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { UI_BUILD_DIR } from '../src/http/ui.js';
import { ensureUiBuilt, launchChromium } from '../test/browser.js';
import { startServer, writeOk } from '../test/support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const SECRETS = 50;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function bundleSizes(): { file: string; raw: number; gzip: number }[] {
  return readdirSync(UI_BUILD_DIR, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const body = readFileSync(join(e.parentPath, e.name));
      return {
        file: relative(UI_BUILD_DIR, join(e.parentPath, e.name)),
        raw: body.length,
        gzip: gzipSync(body).length,
      };
    })
    .sort((a, b) => b.raw - a.raw);
}

const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

async function main(): Promise<void> {
  ensureUiBuilt();
  const sizes = bundleSizes();
  const total = sizes.reduce((t, s) => ({ raw: t.raw + s.raw, gzip: t.gzip + s.gzip }), { raw: 0, gzip: 0 });

  const srv = await startServer({ ui: true });
  const chromium = await launchChromium();
  const render: number[] = [];
  const paint: number[] = [];
  try {
    for (let i = 0; i < SECRETS; i++) {
      await writeOk(srv.api, `secret/data/bench/s${String(i).padStart(3, '0')}`, { data: { value: `v${i}` } });
    }
    for (let run = 0; run < RUNS + 1; run++) {
      const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript((token: string) => sessionStorage.setItem('cofre.token', token), srv.rootToken);
      const page = await context.newPage();
      const started = performance.now();
      await page.goto(`${srv.url}/ui/secrets/secret/bench/`);
      await page
        .locator('.listing li')
        .nth(SECRETS - 1)
        .waitFor();
      const elapsed = performance.now() - started;
      const fcp = await page.evaluate(
        () => performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint')?.startTime ?? NaN,
      );
      await context.close();
      if (run === 0) continue; // the first run warms the server and the browser's process
      render.push(elapsed);
      paint.push(fcp);
    }
  } finally {
    await chromium.close();
    await srv.stop();
  }
  render.sort((a, b) => a - b);
  paint.sort((a, b) => a - b);
  const ms = (n: number): string => `${Math.round(n)} ms`;
  const lines = [
    `Machine: ${cpus().length} vCPU ${cpus()[0]?.model.trim() ?? ''}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}`,
    '',
    '| file | raw | gzip |',
    '| --- | ---: | ---: |',
    ...sizes.map((s) => `| ${s.file} | ${kb(s.raw)} | ${kb(s.gzip)} |`),
    `| **total** | **${kb(total.raw)}** | **${kb(total.gzip)}** |`,
    '',
    `Secrets page (folder of ${SECRETS}), ${RUNS} cold-cache loads:`,
    '',
    '| measure | p50 | p90 | max |',
    '| --- | ---: | ---: | ---: |',
    `| navigation start → listing rendered | ${ms(percentile(render, 50))} | ${ms(percentile(render, 90))} | ${ms(render[render.length - 1] ?? NaN)} |`,
    `| first contentful paint | ${ms(percentile(paint, 50))} | ${ms(percentile(paint, 90))} | ${ms(paint[paint.length - 1] ?? NaN)} |`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
