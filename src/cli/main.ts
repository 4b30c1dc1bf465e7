#!/usr/bin/env node
/**
 * The `cofre` command: Vault's CLI against the Vault HTTP API (served by Cofre at /v1), plus `cofre server`.
 * Exit codes: 0 success, 1 API or runtime error, 2 usage error.
 */
import { buildProgram, run } from './program.js';
import { registerServerCommand } from './server.js';

const program = buildProgram();
registerServerCommand(program);
process.exitCode = await run(program, process.argv.slice(2));
