/**
 * Config files that do not parse are reported with the file, line and column of the mistake, what looks wrong
 * there, and the line with a caret under it. HCL goes through the real parser (hcl2-parser), which gives no
 * position of its own: hcl-position.ts finds it, asking that parser about one attribute or block at a time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDocument } from './server-config.js';

/** The error parseDocument throws for a text. */
function errorFor(file: string, text: string): string {
  try {
    parseDocument(file, text);
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail(`${file} parsed:\n${text}`);
}

describe('config syntax errors name the file, line and column', () => {
  it('an unterminated string: where its quote opens, with the line and a caret', () => {
    assert.equal(
      errorFor('cofre.hcl', 'storage "sqlite" {\n  path = "/var/lib/cofre.db\n}\n'),
      'cofre.hcl:2:10: invalid HCL: unterminated string: the " opened here is not closed on its line\n' +
        '  2 |   path = "*****************\n' +
        '    |          ^',
    );
  });

  it('never shows a value of the line: a config holds passwords and errors reach logs', () => {
    const url = 'postgres://cofre:s3cret-pw@db:5432/cofre';
    const err = errorFor('cofre.hcl', `storage "postgresql" {\n  connection_url = "${url}\n}\n`);
    assert.doesNotMatch(err, /s3cret-pw/);
    assert.match(err, /^cofre\.hcl:2:20: /);
    assert.match(err, / {2}2 \| {3}connection_url = "\*+\n {4}\| {20}\^$/);
    const json = errorFor('cofre.json', `{\n  "storage": {"postgresql": {"connection_url": "${url}"}\n}\n`);
    assert.doesNotMatch(json, /s3cret-pw/);
  });

  const cases: [string, string, string][] = [
    [
      'a block never closed (the next block is balanced)',
      'storage "sqlite" {\n  path = "/x"\n\nlistener "tcp" {\n  address = "a"\n}\n',
      '1:18: invalid HCL: the "{" opened here is never closed (no "}" before the end of the file)',
    ],
    [
      'a closing bracket of the wrong kind',
      'storage "sqlite" {\n  path = ["a", "b"}\n}\n',
      '2:19: invalid HCL: unexpected "}": the "[" opened at 2:10 needs a "]" first',
    ],
    ['a stray closing brace', 'ui = true\n}\n', '2:1: invalid HCL: unexpected "}": nothing open here to close'],
    ['an unterminated comment', 'ui = true\n/* note\n', '2:1: invalid HCL: unterminated comment'],
    ['an unterminated heredoc', 'a = <<EOF\nx\nEOF\nb = <<EOF\ny\n', '4:5: invalid HCL: unterminated heredoc'],
    [
      'an unquoted string (found by the parser)',
      'storage "sqlite" {\n  path = /var/x\n}\n',
      '2:10: invalid HCL: invalid value for "path"',
    ],
    [
      'an attribute without a value',
      'storage "sqlite" {\n  path =\n}\n',
      '2:9: invalid HCL: attribute "path" has no value',
    ],
    [
      'neither attribute nor block',
      'storage "sqlite" {\n  path "x"\n}\n',
      '2:3: invalid HCL: expected an attribute (name = value) or a block (name "label" { ... })',
    ],
    [
      'an attribute defined twice',
      'api_addr = "a"\nlog_level = "info"\napi_addr = "b"\n',
      '3:1: invalid HCL: "api_addr" here conflicts with what comes before it',
    ],
    [
      'a block of two attributes on one line',
      'storage "sqlite" { path = "/x"\n  table = "t" }\n',
      '1:18: invalid HCL: block "storage" is not laid out as HCL wants',
    ],
    [
      'templates and escapes are strings, not brackets: the mistake after them is found',
      'a = "${x}"\nb = "$${y"\nc = "${ {k = 1}["k"] }"\nd = 1 +\n',
      '4:5: invalid HCL: invalid value for "d"',
    ],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      const message = errorFor('cofre.hcl', text);
      assert.ok(message.startsWith(`cofre.hcl:${expected}`), message);
    });
  }

  it('JSON: the position V8 gives, or the end of the longest valid beginning, never the text around it', () => {
    assert.match(errorFor('cofre.json', '{\n  "a": 1,\n}'), /^cofre\.json:3:1: invalid JSON: Expected double-quoted/);
    const unexpected = errorFor('cofre.json', '{\n  "storage": {"sqlite": {"path": x}},\n  "pw": "s3cret"\n}');
    assert.equal(
      unexpected,
      `cofre.json:2:34: invalid JSON: Unexpected token 'x'\n` +
        '  2 |   "storage": {"******"* {"****"* *}},\n' +
        '    |                                  ^',
    );
  });

  it('valid files still parse, HCL and JSON', () => {
    assert.deepEqual(parseDocument('cofre.hcl', 'ui = true\napi_addr = "https://x:8200"\n'), {
      ui: true,
      api_addr: 'https://x:8200',
    });
    assert.deepEqual(parseDocument('cofre.json', '{"ui": true}'), { ui: true });
  });
});
