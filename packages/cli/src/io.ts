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
  /** Whether stdout / stderr / stdin are terminals (default: not). */
  tty?: { stdout?: boolean; stderr?: boolean; stdin?: boolean };
  /** Reads stdin to its end, refusing more than `maxBytes` (default: no stdin, empty). */
  readStdin?(maxBytes: number): Promise<Buffer>;
  /** Reads one line from the terminal without echoing it (stdin a TTY only). */
  readHidden?(prompt: string): Promise<string>;
  /** Calls `handler` on SIGINT/SIGTERM until the returned function is called. */
  onInterrupt?(handler: () => void): () => void;
}

export const NAME = 'agentpack-identity';

/**
 * The exit codes, one table (documented in the top-level help): 0 done, 1 the command failed
 * or the service refused it, 2 the command line is wrong, 3 what it names does not exist (the
 * service answered 404).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure with a one-line reason and an exit code (see {@link EXIT}). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = 1,
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
