// What the injector's tests and benchmark share: the webhook configuration the chart installs, pointed at an
// injector on loopback; the certificates for it; and `cofre injector` spawned as a real process.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { get } from '../scripts/test-cluster.js';
import { INJECT_LABEL } from '../src/kube/injector/contract.js';
import { freePort } from './support.js';

const execFileP = promisify(execFile);

/**
 * The MutatingWebhookConfiguration the chart installs (charts/cofre/templates/injector-webhook.yaml), pointed at an
 * injector listening on loopback with a certificate signed by `caPem`: what the tests and the benchmark register.
 */
export function loopbackWebhook(name: string, port: number, caPem: string): V1MutatingWebhookConfiguration {
  return {
    metadata: { name },
    webhooks: [
      {
        name: 'inject.cofre.dev',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 10,
        objectSelector: { matchLabels: { [INJECT_LABEL]: 'true' } },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
        clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(caPem).toString('base64') },
      },
    ],
  };
}

/** A CA and a serving certificate for 127.0.0.1 (what the API server dials), made with openssl in `dir`. */
export async function injectorCertificates(dir: string): Promise<{ caCert: string; cert: string; key: string }> {
  const openssl = (args: string[]) => execFileP('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'];
  await openssl(['req', '-x509', ...ec, '-subj', '/CN=injector-ca', '-keyout', 'inj-ca.key', '-out', 'inj-ca.crt']);
  await openssl([
    ...['req', '-x509', ...ec, '-CA', 'inj-ca.crt', '-CAkey', 'inj-ca.key', '-subj', '/CN=cofre-injector'],
    ...['-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'extendedKeyUsage=serverAuth'],
    ...['-keyout', 'inj.key', '-out', 'inj.crt'],
  ]);
  return {
    caCert: readFileSync(path.join(dir, 'inj-ca.crt'), 'utf8'),
    cert: path.join(dir, 'inj.crt'),
    key: path.join(dir, 'inj.key'),
  };
}

export interface SpawnedInjector {
  child: ChildProcess;
  port: number;
  caCert: string;
  /** stdout and stderr so far. */
  output(): string;
  exited: Promise<number | null>;
}

/**
 * `cofre injector` on a free loopback port with certificates made in `dir`, once its /healthz answers. The built
 * CLI when `built` and present, else the sources through tsx. `onStdout` sees each chunk of its log.
 */
export async function spawnInjector(opts: {
  dir: string;
  args: string[];
  env?: Record<string, string>;
  built?: boolean;
  onStdout?: (chunk: Buffer) => void;
}): Promise<SpawnedInjector> {
  const { caCert, cert, key } = await injectorCertificates(opts.dir);
  const port = await freePort();
  const entry =
    opts.built && existsSync('dist/cli/main.js') ? ['dist/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
  const child = spawn(
    process.execPath,
    [
      ...entry,
      ...['injector', '--listen', `127.0.0.1:${port}`, '--tls-cert-file', cert, '--tls-key-file', key],
      ...opts.args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
    opts.onStdout?.(d);
  });
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let i = 0; ; i++) {
    const ok = await get(`https://127.0.0.1:${port}/healthz`, caCert).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (child.exitCode !== null || i > 300) {
      child.kill('SIGKILL');
      throw new Error(`cofre injector did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, caCert, output: () => output, exited };
}
