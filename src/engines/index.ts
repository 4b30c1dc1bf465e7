import type { BackendFactory } from '../core/backend.js';
import { cubbyholeFactory } from './cubbyhole/index.js';
import { databaseFactory } from './database/index.js';
import { kvFactory } from './kv/index.js';
import { transitFactory } from './transit/index.js';

/** Secrets engines by type. Adding an engine is its folder plus one line here. */
export const secretEngines: Record<string, BackendFactory> = {
  kv: kvFactory,
  database: databaseFactory,
  cubbyhole: cubbyholeFactory,
  transit: transitFactory,
};
