/**
 * Errors the CLI turns into exit codes: 1 for API and runtime failures, 2 for usage errors and "not found"
 * (as Vault does). `main` prints `Error: <message>` to stderr unless the error is `plain` (printed verbatim)
 * or has no message (the command already printed what it had to say).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
    readonly plain = false,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error (bad arguments or flags): exit code 2. */
export function usageError(message: string): CliError {
  return new CliError(message, 2);
}

/** Vault prints "No value found at PATH" (no "Error:" prefix) and exits 2 when a read finds nothing. */
export function notFound(message: string): CliError {
  return new CliError(message, 2, true);
}

/** Ends the command with an exit code after it printed its own output (e.g. `status` on a sealed server). */
export function silentExit(exitCode: number): CliError {
  return new CliError('', exitCode, true);
}
