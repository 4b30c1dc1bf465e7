// A TCP relay for tests of long-lived connections: it passes bytes both ways until told to go silent, and then keeps
// every connection open and passes nothing, as a partitioned network does (no FIN or RST reaches either side).
import net from 'node:net';

/** A TCP relay to `port` that can go silent: connections stay open, bytes stop, in both directions. */
export function startRelay(port: number): Promise<{ url: string; silent: boolean; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const relay = { url: '', silent: false, close: async () => undefined as void };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => {
        if (!relay.silent) to.write(chunk);
      });
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
      from.on('error', () => to.destroy());
    }
  });
  relay.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      relay.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      resolve(relay);
    }),
  );
}
