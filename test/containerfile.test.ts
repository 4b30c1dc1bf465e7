// The repository's Containerfile (for users, from node:24-bookworm-slim) and scripts/build-image.ts (from scratch,
// here, where no registry is reachable) must build the same image: the same entrypoint, user, application
// directory and `cofre` link. The Containerfile cannot be built without a registry, so its instructions are
// compared with the configuration and files of the image the script built.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { COFRE_APP_DIR, cofreImage } from '../scripts/build-image.js';

const execFileP = promisify(execFile);
const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A file of an OCI archive, as text. */
async function member(archive: string, name: string): Promise<string> {
  return (await execFileP('tar', ['-xOf', archive, name], { maxBuffer: 64 << 20 })).stdout;
}

describe('Cofre image: the Containerfile and the from-scratch build agree', () => {
  it('has the same entrypoint, user, command, application directory and cofre link', async () => {
    const containerfile = readFileSync(path.join(repo, 'Containerfile'), 'utf8');
    const instruction = (name: string) => {
      const lines = containerfile.split('\n').filter((l) => l.startsWith(`${name} `));
      return lines.at(-1)?.slice(name.length + 1);
    };
    const archive = await cofreImage();
    const index = JSON.parse(await member(archive, 'index.json')) as { manifests: { digest: string }[] };
    const blob = (digest: string) => member(archive, `blobs/sha256/${digest.replace('sha256:', '')}`);
    const manifest = JSON.parse(await blob(index.manifests[0]!.digest)) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    const { config } = JSON.parse(await blob(manifest.config.digest)) as {
      config: { Entrypoint?: string[]; Cmd?: string[]; User?: string; Env?: string[] };
    };

    assert.deepEqual(config.Entrypoint, JSON.parse(instruction('ENTRYPOINT') ?? 'null'));
    assert.deepEqual(config.Cmd, JSON.parse(instruction('CMD') ?? 'null'));
    assert.equal(config.User, instruction('USER'));
    assert.ok(config.Env?.includes('NODE_ENV=production'));
    assert.match(instruction('ENV') ?? '', /^NODE_ENV=production$/);

    // The Containerfile copies the build into the same directory and links `cofre` the same way.
    for (const part of ['package.json', 'node_modules', 'dist'])
      assert.ok(containerfile.includes(` ${COFRE_APP_DIR}/${part}`), `Containerfile puts ${part} in ${COFRE_APP_DIR}`);
    assert.ok(containerfile.includes('ln -s ../lib/cofre/dist/cli/main.js /usr/local/bin/cofre'));
    const layer = manifest.layers[0]!.digest.replace('sha256:', '');
    const listing = (
      await execFileP('tar', ['-xOf', archive, `blobs/sha256/${layer}`], { encoding: 'buffer', maxBuffer: 512 << 20 })
    ).stdout;
    const files = (
      await new Promise<string>((resolve, reject) => {
        const tar = execFile('tar', ['-tvz'], { maxBuffer: 64 << 20 }, (err, out) =>
          err ? reject(err) : resolve(out),
        );
        tar.stdin!.end(listing);
      })
    ).split('\n');
    assert.ok(files.some((l) => / usr\/local\/bin\/cofre -> \.\.\/lib\/cofre\/dist\/cli\/main\.js$/.test(l)));
    assert.ok(files.some((l) => /^-rwxr-xr-x .* usr\/local\/lib\/cofre\/dist\/cli\/main\.js$/.test(l)));
    assert.ok(
      files.some((l) => / usr\/local\/bin\/node$/.test(l)),
      'node where node:24-bookworm-slim has it',
    );
    // `cofre agent -init` copies the agent's one-file bundle into pods; both builds must ship it.
    assert.ok(
      files.some((l) => / usr\/local\/lib\/cofre\/dist\/agent\/cofre\.js$/.test(l)),
      'the agent bundle',
    );
    assert.ok(containerfile.includes('RUN node --import tsx scripts/build-agent-bundle.ts'));
    // The web UI, beside dist/ where src/http/ui.ts looks for it.
    assert.ok(
      files.some((l) => / usr\/local\/lib\/cofre\/web\/dist\/index\.html$/.test(l)),
      'the web UI',
    );
    assert.ok(containerfile.includes(`COPY --from=build /src/web/dist ${COFRE_APP_DIR}/web/dist`));
  });
});
