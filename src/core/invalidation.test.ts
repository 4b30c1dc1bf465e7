import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Core } from './core.js';
import { InvalidationRegistry } from './invalidation.js';
import { applyRemoteChanges, dropRemoteChanges } from './remote-changes.js';

/** Just what applyRemoteChanges uses of a core: a registry, and a barrier cache that records what it dropped. */
function fakeCore(registry: InvalidationRegistry, log: string[]): Core {
  const barrier = {
    invalidate: (key: string) => log.push(`barrier ${key}`),
    invalidateAll: () => log.push('barrier *'),
  };
  return { sealed: false, forgetSealConfig: () => undefined, barrier, invalidation: registry } as unknown as Core;
}

describe('cache invalidation by storage prefix', () => {
  it('hands a key to the longest registered prefix, relative to it', () => {
    const registry = new InvalidationRegistry();
    const outer = {};
    const inner = {};
    registry.on('sys/', outer);
    registry.on('sys/token/', inner);
    assert.deepEqual(registry.owner('sys/token/id/abc'), { handler: inner, key: 'id/abc' });
    assert.deepEqual(registry.owner('sys/policy/p'), { handler: outer, key: 'policy/p' });
    assert.equal(registry.owner('logical/x'), undefined);
    assert.throws(() => registry.on('sys/', {}), /already registered/);
    assert.throws(() => registry.on('core/x', { apply: () => Promise.resolve() }), /needs a stage/);
  });

  it('drops every key before the first await, then applies each store once per batch, in stage order', async () => {
    const registry = new InvalidationRegistry();
    const log: string[] = [];
    const applied = (name: string) => (keys: string[]) => {
      log.push(`${name} ${keys.join(',')}`);
      return Promise.resolve();
    };
    registry.on('sys/events/', { stage: 'events', apply: applied('events') });
    registry.on('sys/expire/', { stage: 'leases', apply: applied('leases') });
    const tables = { stage: 'mounts' as const, apply: applied('mounts') };
    registry.on('core/mounts', tables);
    registry.on('core/auth', tables);
    registry.on('core/keyring', { stage: 'keyring', apply: applied('keyring') });
    registry.on('sys/token/', { drop: (key) => log.push(`drop token ${key}`) });
    const keys = ['sys/events/2', 'sys/expire/id/a', 'core/auth', 'sys/token/id/t', 'core/mounts', 'core/keyring'];
    await applyRemoteChanges(fakeCore(registry, log), [...keys, 'sys/expire/id/b', 'elsewhere']);
    assert.deepEqual(log, [
      ...keys.flatMap((key) => (key === 'sys/token/id/t' ? [`barrier ${key}`, 'drop token id/t'] : [`barrier ${key}`])),
      'barrier sys/expire/id/b',
      'barrier elsewhere',
      'keyring ',
      'mounts ,',
      'leases id/a,id/b',
      'events 2',
    ]);
  });

  it('splits the reloads: the keyring and the tables, which requests wait for, then the leases and events', async () => {
    const registry = new InvalidationRegistry();
    const log: string[] = [];
    const applied = (name: string) => () => {
      log.push(name);
      return Promise.resolve();
    };
    registry.on('sys/events/', { stage: 'events', apply: applied('events'), reload: applied('events') });
    registry.on('sys/expire/', { stage: 'leases', apply: applied('leases'), reload: applied('leases') });
    registry.on('core/audit', { stage: 'audit', apply: applied('audit'), reload: applied('audit') });
    registry.on('core/mounts', { stage: 'mounts', apply: applied('mounts'), reload: applied('mounts') });
    const core = fakeCore(registry, log);
    // A write's change event and lease: nothing a request waits for.
    const writes = dropRemoteChanges(core, ['sys/events/7', 'sys/expire/id/a']);
    assert.equal(writes.holdsRequests, false);
    await writes.reloadTables();
    assert.deepEqual(log.splice(0), ['barrier sys/events/7', 'barrier sys/expire/id/a']);
    await writes.reloadRest();
    assert.deepEqual(log.splice(0), ['leases', 'events']);
    // An audit device enabled, with its change event: the audit table first, on its own.
    const audit = dropRemoteChanges(core, ['sys/events/8', 'core/audit']);
    assert.equal(audit.holdsRequests, true);
    await audit.reloadTables();
    assert.deepEqual(log.splice(0), ['barrier sys/events/8', 'barrier core/audit', 'audit']);
    await audit.reloadRest();
    assert.deepEqual(log.splice(0), ['events']);
    // Keys unknown: every table, then the rest.
    const everything = dropRemoteChanges(core, undefined);
    assert.equal(everything.holdsRequests, true);
    await everything.reloadTables();
    assert.deepEqual(log.splice(0), ['barrier *', 'mounts', 'audit']);
    await everything.reloadRest();
    assert.deepEqual(log.splice(0), ['leases', 'events']);
  });

  it('drops and reloads everything, in stage order, when the keys are unknown', async () => {
    const registry = new InvalidationRegistry();
    const log: string[] = [];
    const reload = (name: string) => () => {
      log.push(`reload ${name}`);
      return Promise.resolve();
    };
    registry.on('sys/expire/', { stage: 'leases', reload: reload('leases') });
    registry.on('core/mounts', { stage: 'mounts', reload: reload('mounts') });
    registry.on('sys/token/', { dropAll: () => log.push('drop tokens') });
    registry.on('core/keyring', { stage: 'keyring', reload: reload('keyring') });
    await applyRemoteChanges(fakeCore(registry, log), undefined);
    assert.deepEqual(log, ['barrier *', 'drop tokens', 'reload keyring', 'reload mounts', 'reload leases']);
  });
});
