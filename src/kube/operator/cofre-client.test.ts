import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { CofreAccess, type Identity } from './cofre-client.js';

describe('CofreAccess', () => {
  it('remembers a bounded number of clients however often connections change', () => {
    // Before, every edit of a connection (a new address or CA) added a client and a login that were never let go.
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const access = new CofreAccess(kc, { get: () => undefined });
    for (let i = 0; i < 10_000; i++) access.client({ address: `http://127.0.0.1:${i}` } as Identity);
    const clients = (access as unknown as { clients: { size: number } }).clients;
    assert.ok(clients.size <= 4096, `${clients.size} clients kept`);
  });
});
