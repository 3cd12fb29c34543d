/**
 * What every command shares: the injected I/O (so tests run commands in-process with their
 * own streams, environment and clock), and one-line failures with their exit codes.
 */

/** Where the CLI writes, what environment it reads and what time it is: injected for tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Milliseconds since the Unix epoch; default `Date.now`. */
  now?(): number;
}

export const NAME = 'agentpack-identity';

/** A failure with a one-line reason and an exit code: 1 the command failed, 2 bad usage. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** A command-line mistake (exit code 2). */
export const usage = (message: string) => new CliError(message, 2);

/** The time `io` says it is, in milliseconds. */
export const nowMs = (io: CliIo): number => io.now?.() ?? Date.now();

/** One command: its help text beside the function that runs it. */
export interface Command {
  help: string;
  run(args: readonly string[], io: CliIo): number | Promise<number>;
}

/** A group of commands (`device enroll`, `run exec`, ...), with the group's own help. */
export interface CommandGroup {
  help: string;
  /** What to suggest when the command is missing or unknown, e.g. `device --help`. */
  hint: string;
  commands: Readonly<Record<string, Command>>;
}
