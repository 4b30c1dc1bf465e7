import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ACL, type Operation } from './acl.js';
import { defaultPolicy } from './builtin.js';
import { parsePolicy } from './policy.js';

// Policies are written compactly: each string is one policy, "pattern caps,caps; pattern caps" (→ HCL path blocks),
// or full HCL when it contains a "{"; 'ROOT' and 'DEFAULT' stand for the built-in policies.
const hcl = (short: string): string =>
  short.includes('{')
    ? short
    : short
        .split(';')
        .map((rule) => rule.trim().split(' '))
        .map(([path, caps]) => `path "${path}" {\n  capabilities = ${JSON.stringify(caps?.split(',') ?? [])}\n}\n`)
        .join('');

// Parameter/wrapping cases all use path "r" with extra attributes in the block.
const r = (extra: string, caps = 'create,update'): string =>
  `path "r" {\n  capabilities = ${JSON.stringify(caps.split(','))}\n  ${extra.replaceAll(';', '\n')}\n}`;
const ALLOWED = r('allowed_parameters = {; "foo" = []; "bar" = ["zip", "zap"]; }');
const ALLOW_STAR = r('allowed_parameters = {; "bar" = ["zip"]; "*" = []; }');
const ALLOW_GLOB = r('allowed_parameters = {; "bar" = ["foo-*"]; }');
const ALLOW_AB = r('allowed_parameters = {; "bar" = ["a", "b"]; }');
const DENY_BAR = r('denied_parameters = {; "bar" = []; }');
const DENY_ALL = r('denied_parameters = {; "*" = []; }');
const DENY_WINS = r('allowed_parameters = {; "bar" = []; }; denied_parameters = {; "bar" = ["zip"]; }');
const REQUIRED = r('required_parameters = ["foo", "bar"]');
const MAX_TTL = r('max_wrapping_ttl = "90s"', 'read');

const CRUDL = 'create,read,update,delete,list';
const DOCS = [`secret/* ${CRUDL}; secret/super-secret deny; secret/foo read; secret/zip-* read`];

interface Extra {
  params?: Record<string, unknown>;
  wrapTTL?: number;
  capabilities?: string[];
  sudo?: boolean;
}
type Case = [name: string, policies: string[], path: string, op: Operation, allowed: boolean, extra?: Extra];

// prettier-ignore
const cases: Case[] = [
  // exact vs glob, "*" prefix globs (Vault docs examples)
  ['exact path match', DOCS, 'secret/foo', 'read', true, { capabilities: ['read'] }],
  ['exact rule beats a broader glob', DOCS, 'secret/foo', 'update', false],
  ['exact does not match longer paths', ['secret/foo read'], 'secret/food', 'read', false],
  ['prefix glob matches nested paths', DOCS, 'secret/bar/zip/zap', 'update', true],
  ['prefix glob "secret/*" does not match "secret"', DOCS, 'secret', 'read', false],
  ['glob inside a segment ("zip-*")', DOCS, 'secret/zip-zap/zong', 'read', true, { capabilities: ['read'] }],
  ['longest prefix wins, no union with shorter glob', DOCS, 'secret/zip-zap', 'create', false],
  ['exact deny beats glob grant', DOCS, 'secret/super-secret', 'read', false, { capabilities: ['deny'] }],
  ['leading slash in request path is ignored', DOCS, '/secret/foo', 'read', true],
  // merging across policies
  ['deny in a later policy wins for the same pattern', ['secret/* read,sudo', 'secret/* deny'], 'secret/x', 'read', false, { capabilities: ['deny'], sudo: false }],
  ['deny in an earlier policy wins too', ['secret/* deny', 'secret/* read'], 'secret/x', 'read', false],
  ['same pattern: capabilities are unioned', ['secret/* read', 'secret/* update'], 'secret/x', 'update', true, { capabilities: ['read', 'update'] }],
  ['different patterns: only the best match counts', ['secret/* read', 'secret/a/* update'], 'secret/a/b', 'read', false],
  // root, empty, default
  ['empty ACL denies', [], 'secret/foo', 'read', false, { capabilities: ['deny'], sudo: false }],
  ['root allows everything with sudo', ['ROOT'], 'sys/audit/file', 'delete', true, { capabilities: ['root'], sudo: true }],
  ['default policy: token lookup-self', ['DEFAULT'], 'auth/token/lookup-self', 'read', true],
  ['default policy: renew-self', ['DEFAULT'], 'auth/token/renew-self', 'update', true],
  ['default policy: lookup-self is read-only', ['DEFAULT'], 'auth/token/lookup-self', 'update', false],
  ['default policy: own cubbyhole', ['DEFAULT'], 'cubbyhole/notes', 'create', true],
  ['default policy: no secret/foo', ['DEFAULT'], 'secret/foo', 'read', false],
  // operations ↔ capabilities
  ['list needs list', ['secret/* list'], 'secret/', 'list', true],
  ['read needs read, not list', ['secret/* list'], 'secret/x', 'read', false],
  ['list is not implied by read', ['secret/* read'], 'secret/', 'list', false],
  ['create allowed by create', ['kv/a create'], 'kv/a', 'create', true],
  ['update not implied by create', ['kv/a create'], 'kv/a', 'update', false],
  ['create not implied by update', ['kv/a update'], 'kv/a', 'create', false],
  ['patch allowed by patch', ['kv/a patch'], 'kv/a', 'patch', true],
  ['patch not implied by update', ['kv/a update'], 'kv/a', 'patch', false],
  ['delete needs delete', ['kv/a read,update'], 'kv/a', 'delete', false],
  // trailing slash on list
  ['list "x/" matches exact rule "x"', ['secret/meta list'], 'secret/meta/', 'list', true],
  ['list "x/" matches exact rule "x/"', ['secret/meta/ list'], 'secret/meta/', 'list', true],
  ['read does not strip the trailing slash', ['secret/meta read,list'], 'secret/meta/', 'read', false],
  ['list "x/" matches "+" rule without slash', ['+/sys/policies/acl list'], 'ns1/sys/policies/acl/', 'list', true],
  ['list "x/" matches prefix rule "x*"', ['secret* list'], 'secret/', 'list', true],
  // sudo
  ['sudo capability reported', [`sys/audit/* ${CRUDL},sudo`], 'sys/audit/file', 'update', true, { sudo: true }],
  ['no sudo without the capability', [`sys/audit/* ${CRUDL}`], 'sys/audit/file', 'update', true, { sudo: false }],
  ['sudo reported even when refused', ['sys/raw/* read,sudo'], 'sys/raw/x', 'delete', false, { sudo: true }],
  // "+" segment wildcards
  ['"+" matches one segment', ['secret/+/teamb read'], 'secret/foo/teamb', 'read', true],
  ['"+" never spans two segments', ['secret/+/teamb read'], 'secret/foo/bar/teamb', 'read', false],
  ['"+" rule needs the same segment count', ['secret/+/teamb read'], 'secret/foo/teamb/x', 'read', false],
  ['several "+" segments', ['secret/+/+/teamb read'], 'secret/a/b/teamb', 'read', true],
  ['leading "+"', ['+/config read'], 'kv/config', 'read', true],
  ['"+" in the middle with a trailing "*"', ['secret/+/team-* read'], 'secret/a/team-x/y', 'read', true],
  ['"+…*" still needs the fixed prefix', ['secret/+/team-* read'], 'secret/a/other', 'read', false],
  // priority rules between overlapping patterns (Vault docs, in order)
  ['rule 1: later first wildcard wins (+ vs +)', ['secret/+/baz read', 'secret/foo/+ update'], 'secret/foo/baz', 'update', true, { capabilities: ['update'] }],
  ['rule 1: later first wildcard wins (* vs +)', ['foo/a* read', 'foo/+ update'], 'foo/ab', 'read', true, { capabilities: ['read'] }],
  ['rule 2: not ending in "*" wins', ['foo/+/bar read', 'foo/+/ba* update'], 'foo/x/bar', 'update', false, { capabilities: ['read'] }],
  ['rule 2: "foo/+" beats "foo/*"', ['foo/* read', 'foo/+ update'], 'foo/x', 'update', true],
  ['rule 3: fewer "+" wins', ['secret/* read', 'secret/+/+/foo/* update'], 'secret/a/b/foo/c', 'read', true, { capabilities: ['read'] }],
  ['rule 4: longer wins', ['foo/+/bar/b* read', 'foo/+/bar/ba* update'], 'foo/x/bar/baz', 'update', true, { capabilities: ['update'] }],
  ['rule 5: lexicographically greater wins', ['a/+/+/c update', 'a/+/b/+ read'], 'a/1/b/c', 'read', true, { capabilities: ['read'] }],
  // parameter constraints
  ['allowed params: any value / listed value', [ALLOWED], 'r', 'create', true, { params: { foo: 'x', bar: 'zip' } }],
  ['allowed params: unlisted value', [ALLOWED], 'r', 'create', false, { params: { bar: 'zop' } }],
  ['allowed params: unlisted parameter', [ALLOWED], 'r', 'update', false, { params: { baz: 1 } }],
  ['allowed params: no parameters at all', [ALLOWED], 'r', 'create', true],
  ['allowed params: names are case-insensitive', [ALLOWED], 'r', 'create', true, { params: { BAR: 'zap' } }],
  ['allowed "*" admits other parameters', [ALLOW_STAR], 'r', 'create', true, { params: { other: 1, bar: 'zip' } }],
  ['allowed "*" keeps listed values strict', [ALLOW_STAR], 'r', 'create', false, { params: { bar: 'no' } }],
  ['allowed glob value "foo-*"', [ALLOW_GLOB], 'r', 'create', true, { params: { bar: 'foo-1' } }],
  ['allowed glob value rejects others', [ALLOW_GLOB], 'r', 'create', false, { params: { bar: 'bar-1' } }],
  ['allowed list value checked per element', [ALLOW_AB], 'r', 'create', true, { params: { bar: ['b', 'a'] } }],
  ['allowed comma string checked per element', [ALLOW_AB], 'r', 'create', false, { params: { bar: 'a,c' } }],
  ['read is parameter-checked too (as in Vault)', [r('allowed_parameters = {; "v" = ["1"]; }', 'read')], 'r', 'read', false, { params: { v: '2' } }],
  ['denied param with any value', [DENY_BAR], 'r', 'create', false, { params: { bar: 'x' } }],
  ['denied param leaves others allowed', [DENY_BAR], 'r', 'create', true, { params: { foo: 'x' } }],
  ['denied "*" refuses any parameter', [DENY_ALL], 'r', 'create', false, { params: { foo: 'x' } }],
  ['denied "*" still allows an empty request', [DENY_ALL], 'r', 'create', true],
  ['denied value wins over allowed', [DENY_WINS], 'r', 'create', false, { params: { bar: 'zip' } }],
  ['required params missing', [REQUIRED], 'r', 'create', false, { params: { foo: 1 } }],
  ['required params present', [REQUIRED], 'r', 'create', true, { params: { foo: 1, bar: 2 } }],
  ['delete is not parameter-checked', [r('required_parameters = ["foo"]', 'delete')], 'r', 'delete', true],
  ['allowed values merge across policies', [ALLOW_GLOB, ALLOW_AB], 'r', 'create', true, { params: { bar: 'foo-x' } }],
  // response-wrapping TTL bounds
  ['max_wrapping_ttl: within bound', [MAX_TTL], 'r', 'read', true, { wrapTTL: 60 }],
  ['max_wrapping_ttl: too long', [MAX_TTL], 'r', 'read', false, { wrapTTL: 120 }],
  ['min_wrapping_ttl: wrapping is mandatory', [r('min_wrapping_ttl = 1', 'read')], 'r', 'read', false],
  // LIST with a trailing slash weighs the path with and without it: a deny on either wins
  ['list: a deny under a broad list grant wins', ['secret/metadata/* list; secret/metadata/private/* deny'], 'secret/metadata/private/', 'list', false, { capabilities: ['deny'] }],
  ['list: the deny governs in another policy too', ['secret/* list', 'secret/private/* deny'], 'secret/private/', 'list', false],
  ['list: a deny on the bare path wins too', ['secret/* deny; secret/private/* list'], 'secret/private/', 'list', false],
  ['list: the broad grant still lists elsewhere', ['secret/metadata/* list; secret/metadata/private/* deny'], 'secret/metadata/public/', 'list', true],
];

const build = (policies: string[]): ACL =>
  policies[0] === 'ROOT'
    ? ACL.root()
    : new ACL(policies.map((t, i) => (t === 'DEFAULT' ? defaultPolicy() : parsePolicy(`p${i}`, hcl(t)))));

describe('ACL.check (table)', () => {
  it('has at least 40 cases', () => assert.ok(cases.length >= 40, `${cases.length} cases`));
  for (const [name, policies, path, op, allowed, extra = {}] of cases) {
    it(name, () => {
      const result = build(policies).check(path, op, extra.params, { wrapTTL: extra.wrapTTL });
      assert.equal(result.allowed, allowed, result.reason);
      if (extra.capabilities) assert.deepEqual(result.capabilities, extra.capabilities);
      if (extra.sudo !== undefined) assert.equal(result.sudo, extra.sudo);
      assert.equal(result.reason === undefined, allowed, 'a reason is given exactly when refused');
    });
  }
});

describe('ACL.capabilities (sys/capabilities)', () => {
  const acl = build(DOCS);
  const table: [string, string[]][] = [
    ['secret/bar', ['create', 'delete', 'list', 'read', 'update']],
    ['secret/foo', ['read']],
    ['secret/super-secret', ['deny']],
    ['auth/token/lookup-self', ['deny']],
  ];
  for (const [path, expected] of table) {
    it(`${path} → ${expected.join(',')}`, () => assert.deepEqual(acl.capabilities(path), expected));
  }
  it('uses list matching, so a trailing slash falls back to the bare rule', () => {
    assert.deepEqual(build(['secret/meta list,sudo']).capabilities('secret/meta/'), ['list', 'sudo']);
  });
  it('reports a deny under a broad grant for the folder it denies', () => {
    const acl = build(['secret/metadata/* list; secret/metadata/private/* deny']);
    assert.deepEqual(acl.capabilities('secret/metadata/private/'), ['deny']);
  });
  it('is ["root"] for root and ["deny"] for an empty ACL', () => {
    assert.deepEqual(ACL.root().capabilities('anything'), ['root']);
    assert.deepEqual(new ACL([]).capabilities('anything'), ['deny']);
  });
  it('refuses to mix root with other policies', () => {
    assert.throws(() => new ACL([{ name: 'root', raw: '', paths: [] }, defaultPolicy()]), /along with root/);
  });
});
