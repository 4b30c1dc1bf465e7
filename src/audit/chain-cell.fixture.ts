// An audit file writer in a worker, for chain-cell.test.ts: a file device on the chain the test shares, writing
// `count` entries in bursts as requests would.
import { parentPort, workerData } from 'node:worker_threads';
import { fileSink } from './file.js';

const { real, cell, count, writer } = workerData as {
  real: string;
  cell: SharedArrayBuffer;
  count: number;
  writer: string;
};
// No top-level await: on Node.js 20 a worker loads this through tsx's CommonJS hooks (thread-script.ts).
async function main(): Promise<void> {
  const sink = fileSink({ file_path: real }, {}, { take: async () => ({ real, cell }), give: async () => {} });
  await sink.open();
  for (let i = 0; i < count; i += 25) {
    await Promise.all(
      Array.from({ length: 25 }, (_, j) =>
        sink.writeEntry!({ time: new Date().toISOString(), type: 'request', writer, n: i + j }),
      ),
    );
  }
  await sink.close();
  parentPort!.postMessage('done');
}
void main();
