#!/usr/bin/env node
/**
 * The entry point of the agent's one-file bundle (app/cofre.js in the exec runtime, src/kube/pod-agent/install.ts):
 * the `cofre` program with only the `agent` command, so the bundle holds no server, operator or client commands.
 * `cofre.js agent exec -- CMD ARGS` behaves as `cofre agent exec -- CMD ARGS`.
 */
import { Command, CommanderError } from 'commander';
import { registerAgentCommand } from './agent.js';
import { normaliseArgv } from './argv.js';

const program = new Command('cofre').enablePositionalOptions();
registerAgentCommand(program);
program.exitOverride();
for (const cmd of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) cmd.exitOverride();
try {
  await program.parseAsync(normaliseArgv(process.argv.slice(2), program), { from: 'user' });
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  process.stderr.write(`cofre agent: ${(err as Error).message}\n`);
  process.exit(1);
}
