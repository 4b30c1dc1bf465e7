import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTemplate, renderTemplate, TemplateError } from './template.js';

const render = (template: string, data: Record<string, unknown>) => renderTemplate(parseTemplate(template), data);

describe("the agent's templates", () => {
  it('prints fields, index lookups, the whole map, and pipes', () => {
    const data = { username: 'u', password: 'p w', 'odd-key': 'o', port: 5432, nested: { a: 1 } };
    assert.equal(render('user={{ .Data.username }} pw={{.Data.password}}', data), 'user=u pw=p w');
    assert.equal(render('{{ index .Data "odd-key" }}', data), 'o');
    assert.equal(render('{{ .Data.port }} {{ .Data.nested }}', data), '5432 {"a":1}');
    assert.equal(render('{{ .Data.password | b64enc }}', data), Buffer.from('p w').toString('base64'));
    assert.equal(render('{{ .Data.password | b64enc | b64dec | toJson }}', data), '"p w"');
    assert.equal(render('{{ .Data }}', { a: 'b' }), '{"a":"b"}');
    assert.equal(render('no actions', data), 'no actions');
  });

  it('trims white space with {{- and -}} as Go does', () => {
    assert.equal(render('a  \n {{- .Data.x -}} \n  b', { x: 'X' }), 'aXb');
    assert.equal(render('a {{ .Data.x }} b', { x: 'X' }), 'a X b');
  });

  it('renders a kubernetes.io/dockerconfigjson document with the dockerconfigjson helper', () => {
    const out = JSON.parse(render('{{ dockerconfigjson .Data }}', { registry: 'r.io', username: 'u', password: 'p' }));
    assert.deepEqual(out, {
      auths: { 'r.io': { username: 'u', password: 'p', auth: Buffer.from('u:p').toString('base64') } },
    });
    const withEmail = JSON.parse(
      render('{{ dockerconfigjson .Data }}', { registry: 'r', username: 'u', password: 'p', email: 'e@x' }),
    );
    assert.equal(withEmail.auths.r.email, 'e@x');
  });

  it('refuses unknown actions and functions when parsed, and missing fields when rendered, never quoting a value', () => {
    assert.throws(() => parseTemplate('{{ .Values.x }}'), /unsupported action "\{\{ \.Values\.x \}\}"/);
    assert.throws(() => parseTemplate('{{ .Data.x | upper }}'), /unknown function "upper"/);
    assert.throws(() => parseTemplate('{{ .Data.x'), /unclosed action/);
    assert.throws(
      () => render('{{ .Data.nope }}', { x: 'secret-value' }),
      (err: Error) => {
        return (
          err instanceof TemplateError && /no field "nope"/.test(err.message) && !err.message.includes('secret-value')
        );
      },
    );
    assert.throws(() => render('{{ dockerconfigjson .Data }}', { registry: 'r', username: 'u' }), /field "password"/);
  });
});
