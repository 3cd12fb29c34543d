/**
 * The options of `run exec --watch` (secret-watch.ts does the watching): `--watch [SECONDS]`,
 * whose value is optional, `--reload-signal SIG`, the test override of the interval, and the
 * paragraph of `run exec --help` that says what the watch does.
 */
import { constants as osConstants } from 'node:os';
import { usage, type CliIo } from './io.js';
import { intOption } from './options.js';

export const DEFAULT_WATCH_SECONDS = 60;
export const MIN_WATCH_SECONDS = 5;
export const MAX_WATCH_SECONDS = 3600;

/**
 * `AGENTPACK_WATCH_INTERVAL_MS`: replaces `--watch`'s interval with a number of milliseconds
 * (10 to 3 600 000). For tests, which cannot wait 5 seconds a poll; not in the help, and
 * withheld from the command (run exec's WITHHELD_ENV), which has no business with it.
 */
export const WATCH_INTERVAL_ENV = 'AGENTPACK_WATCH_INTERVAL_MS';

/**
 * `--watch [SECONDS]` takes an optional value, which `parseArgs` cannot: rewrites the option
 * part of `args` (before `--`) to `--watch=SECONDS`, or `--watch=` when no value follows (the
 * next word is another option, or there is none). The word after `--watch` is its value
 * unless it starts with "-", so `--watch soon` is refused as a bad number, not as a stray
 * argument.
 */
export function normaliseWatchOption(args: readonly string[]): string[] {
  const end = args.indexOf('--') === -1 ? args.length : args.indexOf('--');
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (i < end && arg === '--watch') {
      const next = args[i + 1];
      if (i + 1 < end && next !== undefined && !next.startsWith('-')) {
        out.push(`--watch=${next}`);
        i += 1;
      } else {
        out.push('--watch=');
      }
      continue;
    }
    out.push(arg);
  }
  return out;
}

/**
 * The poll interval in milliseconds: `--watch`'s seconds (`''` = the default), or the test
 * override of {@link WATCH_INTERVAL_ENV}.
 */
export function watchIntervalMs(value: string, env: CliIo['env']): number {
  const seconds =
    value === ''
      ? DEFAULT_WATCH_SECONDS
      : intOption(value, 'watch', MIN_WATCH_SECONDS, MAX_WATCH_SECONDS)!;
  const override = env[WATCH_INTERVAL_ENV];
  if (override === undefined || override === '') return seconds * 1000;
  if (!/^[0-9]{1,7}$/.test(override) || Number(override) < 10 || Number(override) > 3_600_000) {
    throw usage(`${WATCH_INTERVAL_ENV} must be a whole number of milliseconds from 10 to 3600000`);
  }
  return Number(override);
}

/**
 * The signals that cannot ask for a reload: SIGKILL and SIGSTOP cannot be caught, and the
 * terminal stops (SIGTSTP, SIGTTIN, SIGTTOU) stop a command that does not catch them.
 */
const NOT_RELOAD_SIGNALS: ReadonlySet<string> = new Set([
  'SIGKILL',
  'SIGSTOP',
  'SIGTSTP',
  'SIGTTIN',
  'SIGTTOU',
]);

/** `--reload-signal SIG`: a signal name (`SIGHUP`, `HUP`, `sigusr1`), as Node names it. */
export function parseReloadSignal(value: string): NodeJS.Signals {
  const upper = value.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (!/^SIG[A-Z0-9]+$/.test(name) || !Object.hasOwn(osConstants.signals, name)) {
    throw usage('--reload-signal must be a signal name, such as SIGHUP or SIGUSR1');
  }
  if (NOT_RELOAD_SIGNALS.has(name)) {
    throw usage(
      `--reload-signal cannot be ${name}: it kills or stops the command; use one it can catch, such as SIGHUP or SIGUSR1`,
    );
  }
  return name as NodeJS.Signals;
}

/** The options with a value that `parseWatchOptions` reads. */
export const WATCH_VALUES = ['watch', 'reload-signal'] as const;

/** The watch options of `run exec`, checked, or null without --watch. */
export function parseWatchOptions(
  opts: { watch?: string; 'reload-signal'?: string },
  io: CliIo,
): { intervalMs: number; reloadSignal: NodeJS.Signals | null } | null {
  if (opts.watch === undefined) {
    if (opts['reload-signal'] !== undefined) throw usage('--reload-signal goes with --watch');
    return null;
  }
  const intervalMs = watchIntervalMs(opts.watch, io.env);
  const signal = opts['reload-signal'];
  return { intervalMs, reloadSignal: signal === undefined ? null : parseReloadSignal(signal) };
}

/** What `run exec --help` says about the watch (one paragraph). */
export const WATCH_HELP = `With --watch, the files stay current while COMMAND runs. Every SECONDS (default ${DEFAULT_WATCH_SECONDS}; from
${MIN_WATCH_SECONDS} to ${MAX_WATCH_SECONDS}) the refs are resolved again as the run, in one call (one more per ref that
cannot be resolved at that moment), and
  - a new version replaces its file whole: a temporary file (mode 0600) in the same
    directory, renamed over it; same path, mode 0600. A reader sees the old value or the
    new one, never a mix; a program that keeps the file open keeps the old one;
  - a deleted or destroyed secret (or one the run may no longer read) has its file removed;
    it comes back when the ref resolves again (a new version, an undelete);
  - --reload-signal SIG (e.g. SIGHUP) is sent to COMMAND once after each poll that changed
    any file;
  - when the run is over (completed, revoked or expired: the service answers 401, or its
    expires_at passes by this machine's clock), every file is removed, the broker (if any)
    stops, and COMMAND is sent SIGTERM; the exit code is still COMMAND's;
  - when the service cannot be reached (no answer, or HTTP 5xx or 429), the files stay as
    they are until it answers again, at most until the run expires; one line on stderr when
    that starts and one when it ends.
--watch applies to the secret files only: COMMAND's environment (the broker's variables)
and the broker's keys are read once, when it starts, and do not change. Each change is one
line on stderr (the file's name and version, or why it went), never a value.`;

/** The lines of `run exec --help`'s options for the watch. */
export const WATCH_OPTIONS_HELP = `  --watch [SECONDS]  keep the files current, polling every SECONDS (above)
  --reload-signal SIG
                     with --watch: the signal COMMAND gets after a change (SIGHUP, ...)`;
