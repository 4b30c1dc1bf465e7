/**
 * Vault clients send the non-standard `LIST /v1/... HTTP/1.1`, which Node's llhttp rejects with a `clientError`
 * (HPE_INVALID_METHOD). Parsing every connection ourselves would slow all traffic down, so we act only when that
 * error fires: the connection is taken over and handed back to the server as a Duplex whose byte stream has each
 * `LIST <target>` request line rewritten to `GET <target>?list=true`, which the router treats as a list.
 */
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

const [CR, LF, SP] = [13, 10, 32];
const MAX_HEAD = 64 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

type State = 'start' | 'method' | 'target' | 'line' | 'field' | 'body' | 'size' | 'data' | 'crlf' | 'trailer' | 'pass';

/**
 * Incremental HTTP/1.1 request framer. Every byte passes through unchanged and at once, except a request line's
 * leading `LIST ` (held at most 5 bytes, then sent as `GET `) and the `list=true` added to its target. Framing
 * (Content-Length, chunked with extensions and trailers) tells request lines from body bytes. When llhttp could
 * frame the stream differently from us (request smuggling territory) or it becomes a tunnel, we stop
 * interpreting and pass the rest through: llhttp then judges it alone.
 */
export class ListRewriter {
  private state: State = 'start';
  private text = ''; // held method bytes, or the current line so far (latin1: one char per byte)
  private size = 0; // bytes of the current head, chunk-size line or trailer section
  private left = 0; // body or chunk-data bytes still to pass
  private query = false; // the LIST target already has a query string
  private head: { method: string; length?: number; coding?: string; upgrade?: boolean } = { method: '' };

  /** The bytes to hand to the HTTP parser for this input chunk. */
  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < data.length) {
      const state = this.state;
      if (state === 'pass') {
        out.push(data.subarray(i));
        break;
      } else if (state === 'body' || state === 'data') {
        const n = Math.min(this.left, data.length - i);
        out.push(data.subarray(i, (i += n)));
        this.left -= n;
        if (this.left === 0) this.enter(state === 'body' ? 'start' : 'crlf');
      } else if (state === 'start') {
        if (data[i] === CR || data[i] === LF) {
          out.push(data.subarray(i, ++i)); // llhttp skips empty lines between messages, so do we
        } else {
          this.enter('method');
          this.head = { method: '' };
        }
      } else if (state === 'method') {
        const text = this.text + String.fromCharCode(data[i]!);
        if ('LIST '.startsWith(text)) {
          this.text = text;
          i++;
          if (text === 'LIST ') {
            out.push(Buffer.from('GET '));
            [this.head.method, this.query, this.text, this.state] = ['LIST', false, '', 'target'];
          }
        } else {
          out.push(Buffer.from(this.text, 'latin1')); // not LIST: release what we held, frame the rest
          this.state = 'line';
        }
      } else if (state === 'target') {
        let j = i;
        while (j < data.length && data[j] !== SP && data[j] !== CR && data[j] !== LF) {
          if (data[j++] === 0x3f) this.query = true; // '?'
        }
        out.push(data.subarray(i, j));
        this.size += j - i;
        i = j;
        if (this.size > MAX_HEAD) this.enter('pass');
        else if (data[i] === SP) {
          out.push(Buffer.from(this.query ? '&list=true' : '?list=true'));
          this.state = 'line';
        } else if (i < data.length) this.enter('pass'); // no HTTP version after the target: not ours to guess
      } else {
        // Line states: pass the bytes on now, keep a copy of the line to interpret at its LF.
        const nl = data.indexOf(LF, i);
        const j = nl < 0 ? data.length : nl + 1;
        out.push(data.subarray(i, j));
        this.text += data.toString('latin1', i, j);
        this.size += j - i;
        i = j;
        if (this.size > MAX_HEAD) this.enter('pass');
        else if (nl >= 0) this.endLine();
      }
    }
    return out.filter((bytes) => bytes.length > 0);
  }

  private enter(state: State): void {
    [this.state, this.text, this.size] = [state, '', 0];
  }

  private endLine(): void {
    const text = this.text;
    this.text = '';
    // A bare LF or stray CR: llhttp may read line ends differently, so stop interpreting.
    if (!text.endsWith('\r\n') || text.indexOf('\r') !== text.length - 2) return this.enter('pass');
    const line = text.slice(0, -2);
    if (this.state === 'line') {
      if (this.head.method !== 'LIST') this.head.method = line.slice(0, line.indexOf(' '));
      this.state = 'field';
    } else if (this.state === 'field') {
      if (line === '') this.endHead();
      else this.field(line);
    } else if (this.state === 'crlf') {
      this.enter(line === '' ? 'size' : 'pass');
    } else if (this.state === 'trailer') {
      if (line === '') this.enter('start');
    } else {
      const m = /^([0-9a-fA-F]{1,12})(?:[ \t;].*)?$/.exec(line); // chunk size [extensions]
      if (!m) return this.enter('pass');
      this.left = parseInt(m[1]!, 16);
      this.enter(this.left > 0 ? 'data' : 'trailer');
    }
  }

  private field(line: string): void {
    const colon = line.indexOf(':');
    const name = line.slice(0, Math.max(colon, 0)).toLowerCase();
    if (!TOKEN.test(name)) return this.enter('pass'); // obs-fold continuation, malformed field
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    const head = this.head;
    if (name === 'content-length') {
      if (head.length !== undefined || !/^\d{1,15}$/.test(value)) return this.enter('pass');
      head.length = Number(value);
    } else if (name === 'transfer-encoding') {
      if (head.coding !== undefined) return this.enter('pass');
      head.coding = value.toLowerCase();
    } else if (name === 'upgrade') {
      head.upgrade = true;
    }
  }

  private endHead(): void {
    const { length, coding, upgrade, method } = this.head;
    const ambiguous = coding !== undefined && (length !== undefined || coding !== 'chunked');
    if (ambiguous || upgrade || method === 'CONNECT') return this.enter('pass');
    this.left = length ?? 0;
    this.enter(coding ? 'size' : this.left > 0 ? 'body' : 'start');
  }
}

type ParseError = Error & { code?: string; rawPacket?: unknown; bytesParsed?: unknown };
type RawSocket = net.Socket & { _httpMessage?: EventEmitter | null; parser?: { remove?: () => void } | null };

const installed = new WeakSet<object>();
const takenOver = new WeakSet<object>(); // their dead llhttp parser may still report (timeout) errors: ignore
const injected = new WeakSet<object>(); // our Duplexes: their errors are real ones
// net.Socket's own listeners (e.g. 'end' → onReadableStreamEnd), which must survive the detaching.
const netOwn = new Set(['data', 'end', 'timeout'].flatMap((event) => new net.Socket().rawListeners(event)));
// What handlers and the server use on req.socket (Fastify's request.ip, request.protocol, TLS client certs...).
const forwarded = [
  ...'remoteAddress remotePort remoteFamily localAddress localPort address setNoDelay setKeepAlive'.split(' '),
  ...'encrypted authorized authorizationError alpnProtocol getPeerCertificate getCipher getProtocol'.split(' '),
];

/**
 * Makes `server` answer `LIST` requests as `GET ...?list=true`. Call it once, after the other `clientError`
 * listeners are registered (Fastify registers its own when built): they move behind ours, because EventEmitter
 * cannot keep them from answering 400 on (and destroying) a connection we take over.
 */
export function installListMethodSupport(server: http.Server | https.Server): void {
  const emitter: EventEmitter = server;
  if (installed.has(server)) return;
  installed.add(server);
  const others = emitter.rawListeners('clientError') as ((err: Error, socket: Duplex) => void)[];
  emitter.removeAllListeners('clientError');
  emitter.on('clientError', (err: ParseError, socket: Duplex) => {
    if (takenOver.has(socket)) return;
    const first = injected.has(socket) ? undefined : listRequest(err);
    if (first) return takeOver(server, socket as RawSocket, first);
    if (others.length === 0) return nodeDefault(err, socket);
    for (const listener of others) listener.call(server, err, socket);
  });
}

/** The failed request's bytes from its start, if it is a LIST; otherwise undefined. */
function listRequest(err: ParseError): Buffer | undefined {
  const { rawPacket: raw, bytesParsed: at } = err;
  if (err.code !== 'HPE_INVALID_METHOD' || !Buffer.isBuffer(raw) || typeof at !== 'number') return undefined;
  // llhttp fails LIST at its 'S' (having matched "LI" as for LINK); the "LI" may have come in earlier packets,
  // but what the packet holds of it must agree. Bytes before it are earlier requests, already handled. (A junk
  // method ending in LIST is read as LIST too; harmless, the framing starts right either way.)
  if (raw[at] !== 0x53 || !'LI'.endsWith(raw.toString('latin1', Math.max(0, at - 2), at))) return undefined;
  return Buffer.concat([Buffer.from('LI'), raw.subarray(at)]);
}

function takeOver(server: http.Server | https.Server, socket: RawSocket, first: Buffer): void {
  takenOver.add(socket);
  // Detach Node's http handling as its own upgrade path does: its 'data'/'end' listeners would drive the failed
  // parser (a second clientError, a premature end()), its 'timeout' one would act on a stale keep-alive timer.
  // 'close' (frees the parser) and 'drain' (backpressure of a response still in flight) stay.
  for (const event of ['data', 'end', 'timeout']) {
    for (const l of socket.rawListeners(event)) if (!netOwn.has(l)) socket.removeListener(event, l as () => void);
  }
  socket.parser?.remove?.(); // internal, optional: keep the dead parser out of the server's timeout/idle sweeps
  const conn = new ListSocket(socket);
  const rewriter = new ListRewriter();
  const feed = (chunk: Buffer): void => {
    for (const bytes of rewriter.push(chunk)) if (!conn.push(bytes)) socket.pause();
  };
  // Adding a 'data' listener makes Node's wrapper of socket.on unconsume the C++ parser from the socket's
  // handle: from here on, bytes arrive in JS (here) instead of in llhttp.
  socket.on('data', feed);
  socket.on('end', () => conn.push(null));
  socket.on('error', (err) => conn.destroy(injected.has(conn) ? err : undefined)); // unheard errors would throw
  socket.on('close', () => conn.destroy());
  socket.on('timeout', () => conn.emit('timeout'));
  socket.resume();
  feed(first);
  // Responses to earlier pipelined requests may still be going out on the socket: start after them, in order.
  const start = (): void => {
    if (socket._httpMessage) socket._httpMessage.once('finish', start);
    else if (!conn.destroyed) {
      socket.setTimeout(0); // clear the keep-alive timer Node armed after its last response here
      injected.add(conn);
      (server as EventEmitter).emit(server instanceof tls.Server ? 'secureConnection' : 'connection', conn);
    }
  };
  start();
}

/** What Node does when no clientError listener exists (lib/_http_server.js socketOnError). */
function nodeDefault(err: ParseError, socket: Duplex & { _httpMessage?: { _headerSent?: boolean } | null }): void {
  if (socket.writable && !socket._httpMessage?._headerSent) {
    const codes: Record<string, number> = { HPE_HEADER_OVERFLOW: 431, HPE_CHUNK_EXTENSIONS_OVERFLOW: 413 };
    const status = codes[err.code ?? ''] ?? (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400);
    socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy(err);
}

/** The connection as the http server sees it after takeover: reads the rewritten stream, writes to the socket. */
class ListSocket extends Duplex {
  constructor(private readonly raw: net.Socket) {
    super();
    for (const key of forwarded) {
      const value: unknown = Reflect.get(raw, key);
      const bound = typeof value === 'function' ? value.bind(raw) : value;
      if (value !== undefined) Object.defineProperty(this, key, { value: bound });
    }
  }
  override _read(): void {
    this.raw.resume();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: () => void): void {
    if (this.raw.write(chunk)) cb();
    else this.raw.once('drain', cb);
  }
  override _final(cb: () => void): void {
    this.raw.end(() => cb());
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.raw.destroy();
    cb(err);
  }
  /** The http server runs keep-alive and idle timeouts through this; the real socket does the timing. */
  setTimeout(ms: number, cb?: () => void): this {
    this.raw.setTimeout(ms);
    if (cb) this.once('timeout', cb);
    return this;
  }
  /** Called by Node after a `Connection: close` response, as on a net.Socket: close once the bytes are out. */
  destroySoon(): void {
    this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }
}
