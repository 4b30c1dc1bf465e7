// Encrypt, Decrypt and the key id, through Cofre's transit engine with the plugin's token. The API server's data
// keys (DEKs, or KMS v2's DEK seeds) are what goes through here: transit wraps them with a named key that never
// leaves Cofre. key_id names the transit key and its latest version, so it changes when the key is rotated.
import type { VaultClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import { detail, type PluginSession } from './auth.js';

export class TransitKek {
  constructor(
    private readonly client: VaultClient,
    private readonly session: PluginSession,
    /** Mount of the transit engine, without slashes. */
    private readonly mount: string,
    private readonly key: string,
  ) {}

  keyId(version: number): string {
    return `cofre:${this.mount}/${this.key}:v${version}`;
  }

  /** One call with the token; a 403 (a token revoked meanwhile) gets one new login and one more try. */
  private async call<T>(method: string, path: string, body: unknown, what: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.session.token();
      try {
        return (await this.client.request(method, `${this.mount}/${path}`, {
          ...(body !== undefined ? { body } : {}),
          token,
          what,
        })) as T;
      } catch (err) {
        if (attempt === 0 && err instanceof ApiError && err.status === 403) {
          this.session.refused(token);
          continue;
        }
        throw new Error(`${what}: ${detail(err)}`);
      }
    }
  }

  /** The key's latest version: what new data is encrypted under. */
  async latestVersion(): Promise<number> {
    const res = await this.call<{ data?: { latest_version?: number } }>(
      'GET',
      `keys/${this.key}`,
      undefined,
      `reading transit key ${this.mount}/${this.key}`,
    );
    const version = res.data?.latest_version;
    if (!version) throw new Error(`transit key ${this.mount}/${this.key} has no version`);
    return version;
  }

  async encrypt(plaintext: Buffer): Promise<{ ciphertext: Buffer; keyId: string }> {
    const res = await this.call<{ data?: { ciphertext?: string } }>(
      'POST',
      `encrypt/${this.key}`,
      { plaintext: plaintext.toString('base64') },
      `encrypting with ${this.mount}/${this.key}`,
    );
    const ciphertext = res.data?.ciphertext ?? '';
    const version = /^vault:v(\d+):/.exec(ciphertext)?.[1];
    if (!version) throw new Error(`encrypting with ${this.mount}/${this.key}: no ciphertext in the answer`);
    return { ciphertext: Buffer.from(ciphertext, 'utf8'), keyId: this.keyId(Number(version)) };
  }

  async decrypt(ciphertext: Buffer): Promise<Buffer> {
    const res = await this.call<{ data?: { plaintext?: string } }>(
      'POST',
      `decrypt/${this.key}`,
      { ciphertext: ciphertext.toString('utf8') },
      `decrypting with ${this.mount}/${this.key}`,
    );
    return Buffer.from(res.data?.plaintext ?? '', 'base64');
  }
}
