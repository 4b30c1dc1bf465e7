import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { bindPrivateSocket } from './grpc-service.js';

describe('bindPrivateSocket', () => {
  it("makes a socket only its owner may dial, and leaves the process's umask as it was", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cofre-grpc-'));
    const server = new grpc.Server();
    const before = process.umask();
    try {
      const socket = join(dir, 'plugin.sock');
      await bindPrivateSocket(server, socket);
      const stat = statSync(socket);
      assert.ok(stat.isSocket());
      assert.equal(stat.mode & 0o777, 0o600);
      assert.equal(process.umask(), before);
    } finally {
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
