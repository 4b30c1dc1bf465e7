// A server thread's store in a worker, for sqlite-threads.test.ts: it blocks (without running its event loop) until
// the test says another thread's write was acknowledged, then reports what catchUp alone delivered.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { SqliteThreadStorage } from './sqlite-threads.js';

const { file, port, changeCounter, control } = workerData as {
  file: string;
  port: MessagePort;
  changeCounter: SharedArrayBuffer;
  control: SharedArrayBuffer;
};
const store = new SqliteThreadStorage({ file, port, changeCounter, index: 1, threads: 2 });
const heard: string[] = [];
await store.watchChanges((keys) => heard.push(...(keys ?? ['<all>'])));
const flag = new Int32Array(control);
parentPort!.on('message', async (what: 'block' | 'close') => {
  if (what === 'close') {
    await store.close();
    parentPort!.close();
    return;
  }
  heard.length = 0;
  parentPort!.postMessage('blocking');
  Atomics.wait(flag, 0, 0);
  Atomics.store(flag, 0, 0);
  const beforeCatchUp = [...heard];
  store.catchUp();
  parentPort!.postMessage({ beforeCatchUp, afterCatchUp: [...heard] });
});
parentPort!.postMessage('ready');
