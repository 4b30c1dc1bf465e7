import { createConnection, type Socket } from 'node:net';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { GENESIS } from '../core/audit-chain.js';
import type { AuditSink } from '../core/audit-broker.js';

/**
 * The socket audit device: one JSON line per entry to `address` over tcp (default), udp or a unix socket, for
 * shipping logs off the machine. A broken connection is re-opened on the next write; a write that cannot be
 * delivered within write_timeout fails (and so fails the request when no other device wrote it).
 */
export function socketSink(options: Record<string, string>) {
  const type = options.socket_type ?? 'tcp';
  const address = options.address;
  if (!address) throw new Error('address is required');
  if (!['tcp', 'udp', 'unix'].includes(type)) throw new Error(`socket_type must be tcp, udp or unix, not "${type}"`);
  const timeoutMs = Number(options.write_timeout_ms ?? 2000);
  let socket: Socket | undefined;
  /** The UDP socket, kept from one write to the next. */
  let datagrams: DgramSocket | undefined;

  const connect = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s =
        type === 'unix'
          ? createConnection({ path: address })
          : createConnection({
              host: address.slice(0, address.lastIndexOf(':')),
              port: Number(address.slice(address.lastIndexOf(':') + 1)),
            });
      const timer = setTimeout(() => s.destroy(new Error(`connect to ${address} timed out`)), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.on('error', () => undefined); // errors surface on the next write
        s.on('close', () => {
          if (socket === s) socket = undefined;
        });
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });

  const sink: AuditSink = {
    async open() {
      if (type !== 'udp') socket = await connect();
      return GENESIS;
    },
    async write(text) {
      if (type === 'udp') {
        const [host, port] = [
          address.slice(0, address.lastIndexOf(':')),
          Number(address.slice(address.lastIndexOf(':') + 1)),
        ];
        if (!datagrams) {
          datagrams = createSocket(host.includes(':') ? 'udp6' : 'udp4');
          // Kept open now, so an error event must not end the process: a send's failure reaches its callback.
          datagrams.on('error', () => undefined);
        }
        const udp = datagrams;
        try {
          // One datagram per line, as a collector reads them: the lines of one write together could pass the size
          // a datagram may have.
          for (const line of text.split('\n')) {
            if (line === '') continue;
            await new Promise<void>((resolve, reject) =>
              udp.send(line + '\n', port, host, (err) => (err ? reject(err) : resolve())),
            );
          }
        } catch (err) {
          // The next write starts on a new socket.
          if (datagrams === udp) datagrams = undefined;
          udp.close();
          throw err;
        }
        return;
      }
      socket ??= await connect();
      const s = socket;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          s.destroy();
          reject(new Error(`write to ${address} timed out`));
        }, timeoutMs);
        s.write(text, (err) => {
          clearTimeout(timer);
          if (err) {
            s.destroy();
            reject(err);
          } else resolve();
        });
      });
    },
    async close() {
      socket?.end();
      socket = undefined;
      datagrams?.close();
      datagrams = undefined;
    },
  };
  return sink;
}
