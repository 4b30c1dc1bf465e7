import type { Command } from 'commander';

interface AgentFlags {
  init?: boolean;
  exitAfterRender?: boolean;
  statusFile?: string;
}

/** A message on stderr a person reads in `kubectl logs` (the JSON log lines say the same for machines). */
function die(err: unknown): never {
  process.stderr.write(`cofre agent: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

/**
 * `cofre agent` and `cofre agent exec`: the in-pod agent (docs/in-pod-agent.md). It reads only its environment
 * (COFRE_ADDR, COFRE_AGENT_CONFIG, COFRE_CACERT), as the webhook sets it. The work is in src/kube/pod-agent/; the
 * modules load when the command runs, so other commands do not pay for them.
 */
export function registerAgentCommand(program: Command): void {
  const agent = program
    .command('agent')
    .description('Run the in-pod agent: render secrets to files (init container or native sidecar)')
    .option('--init', 'render every file item once, install the exec runtime (install_to) and exit')
    .option('--exit-after-render', 'render every file item once and exit')
    .option(
      '--status-file <path>',
      'write the agent state (renders, renewals, errors; never a value) to this JSON file (env COFRE_AGENT_STATUS_FILE)',
    )
    .addHelpText(
      'after',
      '\nEnvironment: COFRE_ADDR (Cofre address), COFRE_AGENT_CONFIG (the JSON configuration), COFRE_CACERT (a PEM\n' +
        "file's path or the PEM itself). See docs/in-pod-agent.md.",
    )
    .action(async (flags: AgentFlags) => {
      const [{ agentEnvironment, runFilesMode }, { jsonLog }] = await Promise.all([
        import('../kube/pod-agent/run.js'),
        import('../kube/pod-agent/log.js'),
      ]);
      const log = jsonLog('cofre-agent');
      try {
        const environment = agentEnvironment();
        const statusFile = flags.statusFile || process.env.COFRE_AGENT_STATUS_FILE || undefined;
        await runFilesMode(environment, {
          once: Boolean(flags.init || flags.exitAfterRender),
          log,
          ...(statusFile ? { statusFile } : {}),
        });
        process.exit(0);
      } catch (err) {
        log('error', 'the agent failed', { error: (err as Error).message });
        die(err);
      }
    });
  agent
    .command('exec')
    .description('Run a command with the env items in its environment only: cofre agent exec -- CMD [ARGS...]')
    .argument('<command...>', 'the command and its arguments (after --)')
    .allowUnknownOption()
    .passThroughOptions()
    .action(async (argv: string[]) => {
      const [{ agentEnvironment, runExecMode }, { jsonLog }] = await Promise.all([
        import('../kube/pod-agent/run.js'),
        import('../kube/pod-agent/log.js'),
      ]);
      // The application's own stderr: only what goes wrong.
      const full = jsonLog('cofre-agent-exec');
      const log: typeof full = (level, msg, fields) => {
        if (level !== 'info') full(level, msg, fields);
      };
      try {
        await runExecMode(agentEnvironment(), argv, log);
      } catch (err) {
        log('error', 'the agent could not start the command', { error: (err as Error).message });
        die(err);
      }
    });
}
