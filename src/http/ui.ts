/**
 * The web UI's static files (web/dist, built by Vite) at /ui/. The UI is a client of the public /v1 API like any
 * other: nothing here reads the core. Files are read into memory once, when the server starts, so a request can
 * only ever name one of them: no path a client sends reaches the file system.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where `npm run build` puts the UI: web/dist beside src/ and dist/ (both are two levels below the root). */
export const UI_BUILD_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

export interface UiOptions {
  /** The built UI's directory (UI_BUILD_DIR unless a test points elsewhere). */
  dir?: string;
  /** Dev mode, as Vault's: a browser opening the server's address lands on the UI. */
  redirectRoot: boolean;
}

/**
 * The UI loads only its own files and talks only to this server; no inline script or style, no framing, no
 * referrer (a secret's path in a URL stays here), no plugin content.
 */
export const UI_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

interface UiFile {
  body: Buffer;
  type: string;
}

/** Every file under the build directory, by its URL path below /ui/ ("index.html", "assets/index-1a2b.js"). */
function loadFiles(dir: string): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    const type = CONTENT_TYPES[extname(entry.name)];
    if (!type) continue; // source maps and anything unexpected stay unserved
    files.set(relative(dir, full).split(sep).join('/'), { body: readFileSync(full), type });
  }
  return files;
}

/** Whether a built UI is there to serve. */
export function uiBuilt(dir = UI_BUILD_DIR): boolean {
  return existsSync(join(dir, 'index.html'));
}

function send(reply: FastifyReply, file: UiFile): FastifyReply {
  return reply.code(200).headers(UI_SECURITY_HEADERS).type(file.type).send(file.body);
}

/**
 * Adds GET /ui, /ui/* (and / in dev mode) to the server. A path that names no file and has no extension is one of
 * the UI's own pages (/ui/secrets/secret/app): it gets index.html, and the UI's router shows the page.
 */
export function registerUi(app: FastifyInstance, opts: UiOptions): void {
  const files = loadFiles(opts.dir ?? UI_BUILD_DIR);
  const index = files.get('index.html');
  if (!index) throw new Error(`the web UI's index.html is missing from ${opts.dir ?? UI_BUILD_DIR}`);
  app.get('/ui', (_req, reply) => reply.redirect('/ui/', 308));
  app.get('/ui/*', (req, reply) => {
    const path = (req.params as { '*': string })['*'];
    const file = files.get(path === '' ? 'index.html' : path);
    if (file) return send(reply, file);
    if (extname(path) === '') return send(reply, index);
    return reply
      .code(404)
      .headers(UI_SECURITY_HEADERS)
      .type('text/plain; charset=utf-8')
      .send('no such file in the web UI\n');
  });
  if (opts.redirectRoot) app.get('/', (_req, reply) => reply.redirect('/ui/', 307));
}
