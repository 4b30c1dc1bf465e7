import type { Command } from 'commander';
import { apiCommand, clientFrom } from '../common.js';
import type { CommonFlags } from '../common.js';
import { stdio } from '../output.js';

/** `cofre operator step-down`: the node gives up leading the background jobs (sys/step-down, sudo). */
export function registerStepDownCommand(operator: Command): void {
  apiCommand(operator, 'step-down', 'Make the node give up leading the background jobs to another node', false).action(
    async (flags: CommonFlags) => {
      const client = clientFrom(flags);
      await client.request('PUT', 'sys/step-down', { what: 'stepping down' });
      stdio.stdout.write(`Success! Stepped down: ${client.address}\n`);
    },
  );
}
