#!/usr/bin/env node
/**
 * The `cofre` command: Vault's CLI against the Vault HTTP API (served by Cofre at /v1), plus `cofre server`.
 * Exit codes: 0 success, 1 API or runtime error, 2 usage error.
 */
import { registerAgentCommand } from './agent.js';
import { registerClusterAgentCommand } from './cluster-agent.js';
import { registerCsiProviderCommand } from './csi-provider.js';
import { registerInjectorCommand } from './injector.js';
import { registerKmsPluginCommand } from './kms-plugin.js';
import { buildProgram, run } from './program.js';
import { registerOperatorKubernetesCommand } from './operator-kubernetes.js';
import { registerServerCommand } from './server.js';

// `cofre ... | head` closes the pipe early: that is the reader's choice, not an error to print a stack for.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

const program = buildProgram();
registerServerCommand(program);
registerClusterAgentCommand(program);
registerInjectorCommand(program);
registerAgentCommand(program);
registerCsiProviderCommand(program);
registerKmsPluginCommand(program);
const operatorGroup = program.commands.find((c) => c.name() === 'operator');
if (operatorGroup) registerOperatorKubernetesCommand(operatorGroup);
process.exitCode = await run(program, process.argv.slice(2));
