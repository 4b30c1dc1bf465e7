import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserHosts, hostOf, invalidBrowserHost } from './browser-hosts.js';

describe('browser hosts (DNS rebinding)', () => {
  const hosts = new BrowserHosts(['127.0.0.1:8200', 'https://Cofre.Example.com:8200/', 'ui.example.org']);
  const browser = (host: string | undefined, extra: Record<string, string> = { 'sec-fetch-site': 'same-origin' }) =>
    hosts.refusal({ ...(host === undefined ? {} : { host }), ...extra });

  it('serves a browser under an address, localhost or a name of the server', () => {
    for (const host of [
      '127.0.0.1:8200',
      '10.1.2.3',
      '[::1]:8200',
      '[2001:db8::1]',
      'localhost:8200',
      'LOCALHOST',
      'localhost.:8200',
      'app.localhost:8200',
      'cofre.example.com:8200',
      'COFRE.EXAMPLE.COM.',
      'ui.example.org',
    ]) {
      assert.equal(browser(host), undefined, host);
    }
  });

  it('refuses a browser under any other name, whichever header marks it as one', () => {
    for (const host of [
      'evil.example:8200',
      'localhost.evil.example',
      '127.0.0.1.evil.example',
      'cofre.example.com.evil.example',
      'example.com',
      'evil@127.0.0.1:8200',
      '127.0.0.1/x',
      '127.0.0.1:8200?',
      '',
      ' ',
    ]) {
      assert.match(browser(host) ?? '', /is refused: that is not a name of this server/, JSON.stringify(host));
    }
    assert.ok(browser(undefined), 'no Host at all');
    assert.ok(browser('evil.example', { origin: 'http://evil.example' }), 'Origin alone (an older browser)');
    assert.ok(browser('evil.example', { 'sec-fetch-site': 'none' }), 'a name typed in the address bar');
  });

  it('lets clients that are not browsers use any name', () => {
    assert.equal(hosts.refusal({ host: 'cofre.cofre-system.svc:8200' }), undefined);
    assert.equal(hosts.refusal({ host: 'anything' }), undefined);
  });

  it('does not echo an arbitrarily long Host', () => {
    const refusal = browser(`${'a'.repeat(5000)}.example`) ?? '';
    assert.ok(refusal.length < 400, refusal);
  });

  it('gives the same verdict for a Host seen before, however many other Hosts came between', () => {
    for (let i = 0; i < 500; i++) {
      assert.ok(browser(`n${i}.evil.example`), `n${i}`);
      assert.equal(browser('cofre.example.com:8200'), undefined);
      assert.ok(browser('evil.example:8200'));
    }
  });

  it('"*" lets browsers use any name', () => {
    assert.equal(new BrowserHosts(['*']).refusal({ host: 'evil.example', 'sec-fetch-site': 'same-origin' }), undefined);
  });

  it('reads the host of an address or a URL, and says which configured names are none', () => {
    assert.equal(hostOf('cofre.example.com:8200'), 'cofre.example.com');
    assert.equal(hostOf('http://[::1]:8200'), '::1');
    assert.equal(hostOf('0.0.0.0:8200'), '0.0.0.0');
    assert.equal(hostOf('bücher.example'), 'xn--bcher-kva.example');
    for (const good of [
      'cofre.example.com',
      'localhost',
      '10.0.0.1',
      '::1',
      '*',
      'a-b.c',
      'bücher.example',
      'cofre_dev',
    ]) {
      assert.equal(invalidBrowserHost(good), undefined, good);
    }
    for (const bad of [
      'https://cofre.example.com',
      'cofre.example.com:8200',
      'cofre/ui',
      '-a.example',
      '',
      '*.x',
      'a%2eb',
      'a b',
    ]) {
      assert.match(invalidBrowserHost(bad) ?? '', /is not a host name/, bad);
    }
  });

  it('a dev server checks the name of every request, browser or not', () => {
    const dev = new BrowserHosts(['0.0.0.0:8200', 'devbox', 'cofre_dev'], true);
    for (const host of ['localhost:8200', '127.0.0.1:8200', '192.168.1.20:8200', 'devbox:8200', 'cofre_dev:8200']) {
      assert.equal(dev.refusal({ host, 'x-vault-token': 'root' }), undefined, host);
    }
    assert.equal(dev.refusal({}), undefined, 'no Host: an HTTP/1.0 probe, not a browser');
    const refusal = dev.refusal({ host: 'rebind.example:8200', 'x-vault-token': 'root' }) ?? '';
    assert.match(refusal, /a dev server answers only to an IP address, localhost.*--dev-allowed-host NAME adds a name/);
  });
});
