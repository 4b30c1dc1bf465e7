import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CofreError } from '../errors.js';
import { ACL, type Operation } from './acl.js';
import {
  assertPolicyDeletable,
  assertPolicyWritable,
  DEFAULT_POLICY_TEXT,
  defaultPolicy,
  isRootPolicy,
} from './builtin.js';
import { parseDurationSeconds, parsePolicy, type PathRules } from './policy.js';

const HCL = `
# comment
path "secret/*" {
  capabilities = ["create", "read", "update", "list"]
  allowed_parameters = {
    "foo" = []
    "Bar" = ["zip", "zap"]
  }
  denied_parameters = {
    "baz" = ["x*"]
  }
  required_parameters = ["foo"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "1m30s"
}

path "/secret/super-secret" {
  capabilities = ["deny"]
}

path "sys/+/config" {
  policy = "read"
}
`;

const JSON_TEXT = JSON.stringify({
  path: {
    'secret/*': {
      capabilities: ['create', 'read', 'update', 'list'],
      allowed_parameters: { foo: [], Bar: ['zip', 'zap'] },
      denied_parameters: { baz: ['x*'] },
      required_parameters: ['foo'],
      min_wrapping_ttl: 1,
      max_wrapping_ttl: '90s',
    },
    '/secret/super-secret': { capabilities: ['deny'] },
    'sys/+/config': { policy: 'read' },
  },
});

// The HCL converter returns blocks sorted by path (merging doesn't depend on order), so compare sorted.
const byPath = (rules: PathRules[]): PathRules[] => [...rules].sort((a, b) => (a.path < b.path ? -1 : 1));

/** Asserts a 400 CofreError whose message matches. */
function rejects(text: string, message: RegExp): void {
  assert.throws(
    () => parsePolicy('p', text),
    (err: unknown) => err instanceof CofreError && err.status === 400 && message.test(err.message),
  );
}

describe('parsePolicy', () => {
  it('parses HCL into normalised path rules', () => {
    const policy = parsePolicy('  MyPolicy ', HCL);
    assert.equal(policy.name, 'mypolicy');
    assert.equal(policy.raw, HCL);
    assert.deepEqual(byPath(policy.paths), [
      {
        path: 'secret/*',
        capabilities: ['create', 'read', 'update', 'list'],
        allowedParameters: { foo: [], bar: ['zip', 'zap'] },
        deniedParameters: { baz: ['x*'] },
        requiredParameters: ['foo'],
        minWrappingTTL: 1,
        maxWrappingTTL: 90,
      },
      {
        path: 'secret/super-secret',
        capabilities: ['deny'],
        allowedParameters: {},
        deniedParameters: {},
        requiredParameters: [],
        minWrappingTTL: 0,
        maxWrappingTTL: 0,
      },
      {
        path: 'sys/+/config',
        capabilities: ['read', 'list'],
        allowedParameters: {},
        deniedParameters: {},
        requiredParameters: [],
        minWrappingTTL: 0,
        maxWrappingTTL: 0,
      },
    ]);
  });

  it('gives the same rules and the same ACL decisions for HCL and JSON', () => {
    const fromHcl = parsePolicy('p', HCL);
    const fromJson = parsePolicy('p', JSON_TEXT);
    assert.deepEqual(byPath(fromJson.paths), byPath(fromHcl.paths));
    const [a, b] = [new ACL([fromHcl]), new ACL([fromJson])];
    const probes: [string, Operation, Record<string, unknown>?][] = [
      ['secret/x', 'create', { foo: 1 }],
      ['secret/x', 'create', { foo: 1, bar: 'nope' }],
      ['secret/x', 'create', { foo: 1, baz: 'xylophone' }],
      ['secret/super-secret', 'read'],
      ['sys/a/config', 'list'],
      ['sys/a/config', 'update'],
    ];
    for (const [path, op, params] of probes) assert.deepEqual(a.check(path, op, params), b.check(path, op, params));
  });

  it('accepts the JSON list form and repeated blocks for one path', () => {
    const json = parsePolicy(
      'p',
      JSON.stringify({ path: [{ a: { capabilities: ['read'] } }, { a: { policy: 'deny' } }] }),
    );
    const hcl = parsePolicy('p', 'path "a" {\n capabilities = ["read"]\n}\npath "a" {\n policy = "deny"\n}');
    assert.deepEqual(json.paths, hcl.paths);
    assert.equal(new ACL([hcl]).check('a', 'read').allowed, false);
  });

  it('maps the legacy policy shorthand the way Vault does', () => {
    const caps = (policy: string): string[] =>
      parsePolicy('p', `path "a" {\n policy = "${policy}"\n}`).paths[0]?.capabilities ?? [];
    assert.deepEqual(caps('read'), ['read', 'list']);
    assert.deepEqual(caps('write'), ['create', 'read', 'update', 'delete', 'list']);
    assert.deepEqual(caps('sudo'), ['create', 'read', 'update', 'delete', 'list', 'sudo']);
    assert.deepEqual(caps('deny'), ['deny']);
  });

  it('lets deny discard every other capability', () => {
    assert.deepEqual(parsePolicy('p', 'path "a" { capabilities = ["read", "deny", "sudo"] }').paths[0]?.capabilities, [
      'deny',
    ]);
  });

  it('parses the built-in default policy', () => {
    const policy = defaultPolicy();
    assert.equal(policy.name, 'default');
    assert.equal(policy.raw, DEFAULT_POLICY_TEXT);
    assert.ok(policy.paths.some((r) => r.path === 'auth/token/lookup-self'));
  });
});

describe('parsePolicy errors', () => {
  const table: [string, string, RegExp][] = [
    ['unclosed block', 'path "a" {\n  capabilities = ["read"]\n', /"\{" opened on line 1 is never closed/],
    ['unterminated string', 'path "a {\n}', /unterminated string on line 1/],
    ['stray closer', 'path "a" {\n capabilities = ["read"]\n}\n}', /unexpected "\}" on line 4/],
    ['two attributes on one line', 'path "a" { capabilities = ["read"] policy = "read" }', /invalid HCL syntax/],
    ['invalid JSON', '{"path": {', /invalid JSON/],
    [
      'unknown capability',
      'path "secret/*" { capabilities = ["read", "bogus"] }',
      /unknown capability "bogus" in path "secret\/\*"/,
    ],
    ['unquoted capability', 'path "a" { capabilities = [read] }', /unknown capability .*must be quoted strings/],
    ['no paths', '# nothing here\n', /no paths/],
    ['unknown top-level key', 'paths "a" { capabilities = ["read"] }', /invalid key "paths"/],
    ['unknown path key', 'path "a" { capabilitys = ["read"] }', /path "a": invalid key "capabilitys"/],
    ['enterprise key', 'path "a" {\n capabilities = ["read"]\n mfa_methods = ["x"]\n}', /Vault Enterprise/],
    ['legacy policy value', 'path "a" { policy = "admin" }', /path "a": invalid policy "admin"/],
    ['"+*" wildcard', 'path "a/+*" { capabilities = ["read"] }', /'\+\*' is forbidden/],
    [
      'capabilities not strings',
      JSON.stringify({ path: { a: { capabilities: [1] } } }),
      /capabilities must be a list of strings/,
    ],
    [
      'bad TTL',
      'path "a" {\n capabilities = ["read"]\n min_wrapping_ttl = "soon"\n}',
      /invalid min_wrapping_ttl "soon"/,
    ],
    [
      'max < min TTL',
      'path "a" {\n capabilities = ["read"]\n min_wrapping_ttl = 60\n max_wrapping_ttl = 30\n}',
      /max_wrapping_ttl cannot be less/,
    ],
    [
      'wildcard parameter name',
      'path "a" {\n capabilities = ["read"]\n allowed_parameters = { "ba*" = [] }\n}',
      /parameter "ba\*"/,
    ],
    [
      'wildcard required parameter',
      'path "a" {\n capabilities = ["read"]\n required_parameters = ["*"]\n}',
      /wildcard is not permitted/,
    ],
    ['path not a block', JSON.stringify({ path: { a: 'read' } }), /path "a" must be a block/],
  ];
  for (const [name, text, message] of table) it(name, () => rejects(text, message));

  it('a mistake inside a block names the line the block starts on (the UI points its editor there)', () => {
    const text = [
      '# comment',
      'path "secret/data/*" {',
      '  capabilities = ["read"]',
      '}',
      '',
      '  path "secret/metadata/a.b+c" {',
      '  capabilities = ["reed"]',
      '}',
    ].join('\n');
    rejects(text, /unknown capability "reed" in path "secret\/metadata\/a\.b\+c" .*\(the block on line 6\)$/);
    // A pattern that repeats is pointed at where it first appears; a pattern that only looks alike is not matched.
    rejects('path "ab" {\n capabilities = ["read"]\n}\npath "a" {\n polcy = "x"\n}', /\(the block on line 4\)$/);
    // JSON has no lines worth naming: the message stays as it was.
    assert.throws(
      () => parsePolicy('p', JSON.stringify({ path: { a: { capabilities: ['reed'] } } })),
      (err: Error) => /unknown capability "reed"/.test(err.message) && !err.message.includes('line'),
    );
  });

  it('rejects an empty policy name', () => {
    assert.throws(() => parsePolicy('  ', 'path "a" { capabilities = ["read"] }'), /name must not be empty/);
  });
});

describe('parseDurationSeconds', () => {
  const table: [unknown, number | undefined][] = [
    [undefined, 0],
    ['', 0],
    [90, 90],
    ['90', 90],
    ['90s', 90],
    ['5m', 300],
    ['1h30m', 5400],
    ['1.5s', 1.5],
    ['2d', 172800],
    ['1500ms', 1.5],
    ['soon', undefined],
    ['5 m', undefined],
    [true, undefined],
  ];
  for (const [input, expected] of table) {
    it(`${JSON.stringify(input)} → ${expected}`, () => assert.equal(parseDurationSeconds(input), expected));
  }
});

describe('built-in policy rules', () => {
  it('root can be neither written nor deleted', () => {
    assert.throws(() => assertPolicyWritable('Root'), /cannot update "root" policy/);
    assert.throws(() => assertPolicyDeletable('root'), /cannot delete "root" policy/);
    assert.ok(isRootPolicy(' ROOT '));
  });
  it('default can be written but not deleted', () => {
    assert.doesNotThrow(() => assertPolicyWritable('default'));
    assert.throws(() => assertPolicyDeletable('Default'), /cannot delete default policy/);
  });
  it('other policies can be written and deleted', () => {
    assert.doesNotThrow(() => assertPolicyWritable('ops'));
    assert.doesNotThrow(() => assertPolicyDeletable('ops'));
  });
});
