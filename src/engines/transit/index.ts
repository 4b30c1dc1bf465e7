import type { Backend, BackendFactory } from '../../core/backend.js';
import { TransitKeys } from './keys.js';
import { cryptoPaths } from './path-crypto.js';
import { keyPaths } from './path-keys.js';

/**
 * The transit secrets engine, Vault's API: named keys (keys/) that never leave the server, with which clients
 * encrypt, decrypt and rewrap their own data (encrypt/, decrypt/, rewrap/). Cofre stores no data of theirs.
 */
export const transitFactory: BackendFactory = ({ storage }): Backend => {
  const keys = new TransitKeys(storage);
  return {
    type: 'transit',
    help:
      'Encryption as a service: named keys (keys/) of type aes256-gcm96 or chacha20-poly1305, rotated with ' +
      'keys/<name>/rotate, used by encrypt/<name>, decrypt/<name> and rewrap/<name>. The keys never leave the ' +
      'server and the data is not stored.',
    paths: [...keyPaths(keys), ...cryptoPaths(keys)],
    // Called on seal and unmount: no decoded key outlives the unsealed server.
    stop: async () => keys.clear(),
    // Another node rotated, reconfigured or deleted a key: drop the decoded copy.
    invalidate: (key) => keys.invalidate(key),
  };
};
