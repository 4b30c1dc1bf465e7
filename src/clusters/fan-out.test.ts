import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentConnection } from './fan-out.js';

const shop = (revision: number) => ({ delivery: 'shop', namespace: 'shop', revision });
const never = new AbortController().signal;

/** What next() answers within `ms`, or "waiting". */
async function within(pending: Promise<unknown>, ms = 200): Promise<unknown> {
  return Promise.race([pending, sleep(ms).then(() => 'waiting')]);
}

describe("an agent's connection", () => {
  it('sends what differs from the set it was greeted with, a burst of changes as the latest revision', async () => {
    const connection = new AgentConnection('eu-1', 'id-1');
    connection.greet([shop(3)]);
    connection.update([shop(3)]);
    const next = connection.next(never);
    assert.equal(await within(next), 'waiting', 'nothing differs from the greeting');
    connection.update([shop(4)]);
    connection.update([shop(5)]);
    assert.deepEqual(await next, [{ delivery: 'shop', revision: 5 }]);
  });

  it('a tick with nothing pending makes next() return empty, where a bare wake-up does not', async () => {
    const connection = new AgentConnection('eu-1', 'id-1');
    connection.greet([shop(3)]);
    const next = connection.next(never);
    connection.wakeUp();
    assert.equal(await within(next), 'waiting', 'a bare wake-up with nothing pending waits on');
    connection.tick();
    assert.deepEqual(await within(next), []);
    // The tick is used up: the next wait is for a change again.
    assert.equal(await within(connection.next(never)), 'waiting');
  });

  it('ends its wait when closed or when the stream is aborted', async () => {
    const closed = new AgentConnection('eu-1', 'id-1');
    const waiting = closed.next(never);
    closed.close();
    assert.deepEqual(await within(waiting), []);
    const aborted = new AgentConnection('eu-1', 'id-1');
    const controller = new AbortController();
    const stream = aborted.next(controller.signal);
    controller.abort();
    aborted.wakeUp();
    assert.deepEqual(await within(stream), []);
  });
});
