import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import type { Operation, PathRecord, Request } from './backend.js';
import { Barrier } from './barrier.js';
import { CofreError } from './errors.js';
import {
  DEFAULT_PASSWORD_POLICY,
  generatePassword,
  parsePasswordPolicy,
  PasswordPolicyStore,
  satisfiesPolicy,
  type PasswordPolicy,
} from './password-policy.js';
import { StorageView } from './storage-view.js';
import { passwordPolicyPaths } from './sys/password-policies.js';

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGITS = '0123456789';
const SYMBOLS = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

const badRequestMatching = (pattern: RegExp) => (err: unknown) =>
  err instanceof CofreError && err.status === 400 && pattern.test(err.message);

/** Pearson's statistic of observed counts against equal expected counts. */
function chiSquare(counts: number[]): number {
  const expected = counts.reduce((a, b) => a + b, 0) / counts.length;
  return counts.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0);
}

describe('parsePasswordPolicy', () => {
  it('reads the HCL of Vault’s documentation', () => {
    const policy = parsePasswordPolicy(`
      length = 20
      rule "charset" {
        charset = "abcdefghijklmnopqrstuvwxyz"
        min-chars = 1
      }
      rule "charset" {
        charset = "!@#$%^&*"
        min-chars = 1
      }
      rule "charset" {
        charset = "${SYMBOLS.replace(/["\\]/g, '\\$&')}"
      }`);
    assert.deepEqual(policy, {
      length: 20,
      rules: [
        { charset: LOWER, minChars: 1 },
        { charset: '!@#$%^&*', minChars: 1 },
        { charset: SYMBOLS, minChars: 0 },
      ],
    });
  });

  it('accepts HCL 1 forms that Vault accepts: commas between attributes, "${" taken literally', () => {
    const policy = parsePasswordPolicy('length = 8\nrule "charset" { charset = "ab${c}", min-chars = 2 }');
    assert.deepEqual(policy, { length: 8, rules: [{ charset: 'ab${c}', minChars: 2 }] });
  });

  it('accepts JSON in Vault’s serialised form and in the shorter hand-written forms', () => {
    const want = { length: 12, rules: [{ charset: 'abcde', minChars: 2 }] };
    const forms = [
      { length: 12, rule: [{ charset: [{ charset: 'abcde', 'min-chars': 2 }] }] },
      { length: 12, rule: { charset: [{ charset: 'abcde', 'min-chars': 2 }] } },
      { length: 12, rule: { charset: { charset: 'abcde', 'min-chars': 2 } } },
    ];
    for (const form of forms) assert.deepEqual(parsePasswordPolicy(JSON.stringify(form)), want);
  });

  it('takes characters, not UTF-16 units, and drops repeated ones', () => {
    const policy = parsePasswordPolicy('length = 6\nrule "charset" {\n charset = "é😀aa😀"\n min-chars = 1\n}');
    assert.deepEqual(policy.rules, [{ charset: 'é😀a', minChars: 1 }]);
    for (let i = 0; i < 200; i++) {
      const password = generatePassword(policy);
      assert.equal(Array.from(password).length, 6);
      assert.ok(
        Array.from(password).every((ch) => 'é😀a'.includes(ch)),
        password,
      );
      assert.doesNotMatch(password, /\p{Cs}/u, 'no surrogate pair is split');
    }
  });

  const bad: [string, string, RegExp][] = [
    ['empty', '', /empty/],
    ['not HCL', 'asdf', /invalid HCL syntax/],
    ['unclosed block', 'length = 8\nrule "charset" {\n charset = "abc"\n', /"\{" opened on line 2 is never closed/],
    ['bad JSON', '{"length": 8,', /invalid JSON/],
    ['no rules', 'length = 20', /at least one rule "charset"/],
    ['no length', 'rule "charset" {\n charset = "abc"\n}', /"length" is required/],
    ['length as a string', 'length = "20"\nrule "charset" {\n charset = "abc"\n}', /"length" must be a number/],
    ['length too short', 'length = 3\nrule "charset" {\n charset = "abc"\n}', /between 4 and 100/],
    ['length too long', 'length = 101\nrule "charset" {\n charset = "abc"\n}', /between 4 and 100/],
    ['fractional length', 'length = 10.5\nrule "charset" {\n charset = "abc"\n}', /whole number/],
    ['empty charset', 'length = 8\nrule "charset" {\n charset = ""\n}', /"charset" is empty/],
    ['missing charset', 'length = 8\nrule "charset" {\n min-chars = 1\n}', /"charset" is required/],
    [
      'misspelt attribute',
      'length = 8\nrule "charset" {\n charset = "a"\n min_chars = 1\n}',
      /unknown attribute "min_chars"/,
    ],
    [
      'unknown setting',
      'length = 8\ncharset = "abc"\nrule "charset" {\n charset = "a"\n}',
      /unknown setting "charset"/,
    ],
    ['unknown rule type', 'length = 8\nrule "regex" {\n pattern = "a+"\n}', /unrecognized rule type "regex"/],
    ['rule types are case-sensitive', 'length = 8\nrule "Charset" {\n charset = "a"\n}', /unrecognized rule type/],
    ['rule without a type', 'length = 8\nrule {\n charset = "a"\n}', /must be a block/],
    [
      'control character',
      'length = 8\nrule "charset" {\n charset = "ab\\u0007"\n}',
      /non-printable character \(U\+0007\)/,
    ],
    ['tab', 'length = 8\nrule "charset" {\n charset = "ab\\t"\n}', /non-printable character \(U\+0009\)/],
    ['no-break space', 'length = 8\nrule "charset" {\n charset = "a\\u00a0"\n}', /non-printable character \(U\+00A0\)/],
    ['lone surrogate', '{"length": 8, "rule": {"charset": {"charset": "a\\ud800"}}}', /not valid UTF-8/],
    ['negative min-chars', 'length = 8\nrule "charset" {\n charset = "a"\n min-chars = -1\n}', /whole number >= 0/],
    [
      'min-chars over length',
      'length = 4\nrule "charset" {\n charset = "abc"\n min-chars = 3\n}\nrule "charset" {\n charset = "xyz"\n min-chars = 2\n}',
      /require at least 5 characters but "length" is 4/,
    ],
    [
      'charset over 256 characters',
      JSON.stringify({ length: 8, rule: { charset: { charset: String.fromCodePoint(...range(0x4e00, 257)) } } }),
      /257 characters; at most 256/,
    ],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses: ${what}`, () => {
      assert.throws(() => parsePasswordPolicy(text), badRequestMatching(message));
    });
  }
});

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

describe('generatePassword', () => {
  it('meets every rule, with the exact length and only charset characters, over 2,000 draws', () => {
    const tight: PasswordPolicy = {
      // The minimums fill the whole length, and the charsets overlap.
      length: 6,
      rules: [
        { charset: 'abc', minChars: 2 },
        { charset: 'cde', minChars: 2 },
        { charset: '!', minChars: 2 },
      ],
    };
    for (const policy of [DEFAULT_PASSWORD_POLICY, tight]) {
      const allowed = new Set(policy.rules.flatMap((r) => Array.from(r.charset)));
      for (let i = 0; i < 2000; i++) {
        const password = generatePassword(policy);
        assert.equal(password.length, policy.length);
        assert.ok(
          Array.from(password).every((ch) => allowed.has(ch)),
          password,
        );
        for (const rule of policy.rules) {
          const n = Array.from(password).filter((ch) => rule.charset.includes(ch)).length;
          assert.ok(n >= rule.minChars, `${password} has ${n} of "${rule.charset}", needs ${rule.minChars}`);
        }
        assert.ok(satisfiesPolicy(policy, password));
      }
    }
  });

  // Thresholds sit near p = 1e-9 for a fair generator, so a failure means bias, not bad luck.
  it('draws every character of the charset equally often (no modulo bias)', () => {
    const charset = LOWER + UPPER + DIGITS + SYMBOLS; // 94 characters: 256 is not a multiple
    const policy: PasswordPolicy = { length: 20, rules: [{ charset, minChars: 0 }] };
    const counts = (draw: () => string): number[] => {
      const tally = new Map<string, number>(Array.from(charset, (ch) => [ch, 0]));
      for (let i = 0; i < 2000; i++) for (const ch of draw()) tally.set(ch, tally.get(ch)! + 1);
      return [...tally.values()];
    };
    const THRESHOLD = 200; // chi-square, 93 degrees of freedom
    assert.ok(chiSquare(counts(() => generatePassword(policy))) < THRESHOLD);
    // The same test catches the classic mistake of a random byte modulo the charset length.
    const biased = () => Array.from(randomBytes(20), (b) => charset.charAt(b % charset.length)).join('');
    assert.ok(chiSquare(counts(biased)) > THRESHOLD);
  });

  it('places the required characters at any position (the shuffle is fair)', () => {
    // The default policy's lone "-" is forced once per password: it must not stick to where it was drawn.
    const atPosition = new Array<number>(20).fill(0);
    for (let i = 0; i < 2000; i++) {
      Array.from(generatePassword(DEFAULT_PASSWORD_POLICY)).forEach((ch, pos) => {
        if (ch === '-') atPosition[pos]!++;
      });
    }
    assert.ok(chiSquare(atPosition) < 80, `"-" by position: ${atPosition.join(' ')}`); // 19 degrees of freedom
  });

  it('has Vault’s default policy: 20 characters, lower, upper, digit and "-", one of each at least', () => {
    assert.deepEqual(DEFAULT_PASSWORD_POLICY, {
      length: 20,
      rules: [
        { charset: LOWER, minChars: 1 },
        { charset: UPPER, minChars: 1 },
        { charset: DIGITS, minChars: 1 },
        { charset: '-', minChars: 1 },
      ],
    });
    assert.match(generatePassword(DEFAULT_PASSWORD_POLICY), /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*-)[a-zA-Z0-9-]{20}$/);
    assert.throws(() => (DEFAULT_PASSWORD_POLICY.rules[0]!.minChars = 0), TypeError);
  });

  it('refuses a policy built by hand that could not be met', () => {
    const policy: PasswordPolicy = { length: 4, rules: [{ charset: 'ab', minChars: 5 }] };
    assert.throws(() => generatePassword(policy), badRequestMatching(/require at least 5/));
    assert.throws(() => generatePassword({ length: 8, rules: [] }), badRequestMatching(/at least one rule/));
  });
});

describe('PasswordPolicyStore over an encrypted SQLite storage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cofre-password-policy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const open = async () => {
    const physical = openSqliteStorage(join(dir, `p${n++}.db`));
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    return { physical, store: new PasswordPolicyStore(new StorageView(barrier, 'sys/password_policy/')) };
  };
  const HEX = 'length = 12\nrule "charset" {\n  charset = "0123456789abcdef"\n  min-chars = 2\n}\n';

  it('writes, reads, lists, generates from and deletes policies', async () => {
    const { physical, store } = await open();
    assert.deepEqual(await store.list(), []);
    await store.write('hex', HEX);
    await store.write('json.policy', JSON.stringify({ length: 4, rule: { charset: { charset: 'xy' } } }));
    assert.deepEqual(await store.read('hex'), { name: 'hex', policy: HEX });
    assert.deepEqual(await store.list(), ['hex', 'json.policy']);
    assert.match(await store.generate('hex'), /^[0-9a-f]{12}$/);
    assert.match(await store.generate('json.policy'), /^[xy]{4}$/);
    assert.match(await store.generate(), /^[a-zA-Z0-9-]{20}$/);
    assert.match(await store.generate(''), /^[a-zA-Z0-9-]{20}$/);

    // Stored through the barrier: the SQLite file holds no policy text in clear.
    const raw = await physical.get('sys/password_policy/hex');
    assert.ok(raw && !Buffer.from(raw).includes('0123456789abcdef'));

    await store.write('hex', HEX.replace('12', '16'));
    assert.match(await store.generate('hex'), /^[0-9a-f]{16}$/, 'a rewrite is seen at once');

    await store.delete('hex');
    await store.delete('hex'); // deleting a missing policy is not an error
    assert.equal(await store.read('hex'), undefined);
    await assert.rejects(store.generate('hex'), badRequestMatching(/^password policy "hex" does not exist$/));
    assert.deepEqual(await store.list(), ['json.policy']);
    await physical.close();
  });

  it('stores nothing when the policy or its name is invalid', async () => {
    const { physical, store } = await open();
    await assert.rejects(store.write('p', 'length = 20'), badRequestMatching(/at least one rule/));
    for (const name of ['a/b', 'a@b', '-a', 'a.', '']) {
      await assert.rejects(store.write(name, HEX), badRequestMatching(/invalid password policy name/));
    }
    assert.deepEqual(await store.list(), []);
    await physical.close();
  });

  it('serves sys/policies/password as Vault does', async () => {
    const { physical, store } = await open();
    const records = passwordPolicyPaths(store);
    const call = (op: Operation, path: string, data: Record<string, unknown> = {}) => {
      const record = records.find((r: PathRecord) => new RegExp(`^(?:${r.pattern})$`).test(path));
      const params = { ...new RegExp(`^(?:${record!.pattern})$`).exec(path)!.groups };
      const req = { operation: op, path, params, data, raw: data, query: {} } as unknown as Request;
      return record!.operations[op]!(req);
    };
    const status = (code: number) => (err: unknown) => err instanceof CofreError && err.status === code;

    await assert.rejects(call('list', 'policies/password/'), status(404));
    assert.equal(await call('update', 'policies/password/plain', { policy: HEX }), undefined);
    // The policy may be sent base64-encoded, even wrapped as `base64` prints it; it is stored decoded.
    const encoded = Buffer.from(HEX)
      .toString('base64')
      .replace(/(.{20})/g, '$1\n');
    await call('update', 'policies/password/encoded', { policy: encoded });
    assert.deepEqual(await call('read', 'policies/password/encoded'), { data: { policy: HEX } });
    assert.deepEqual(await call('list', 'policies/password/'), { data: { keys: ['encoded', 'plain'] } });
    const generated = await call('read', 'policies/password/plain/generate');
    assert.match(generated?.data?.password as string, /^[0-9a-f]{12}$/);

    await assert.rejects(call('update', 'policies/password/x', {}), badRequestMatching(/missing policy/));
    await assert.rejects(call('update', 'policies/password/x', { policy: 'length = 2' }), status(400));
    await assert.rejects(call('read', 'policies/password/nope'), status(404));
    await assert.rejects(call('read', 'policies/password/nope/generate'), status(404));
    await call('delete', 'policies/password/plain');
    await assert.rejects(call('read', 'policies/password/plain'), status(404));
    for (const record of records) {
      for (const [field, spec] of Object.entries(record.fields ?? {})) assert.ok(spec.description, field);
    }
    await physical.close();
  });
});
