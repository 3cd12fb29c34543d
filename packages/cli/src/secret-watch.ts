/**
 * `run exec --watch`: keeps the secret files of a running command current, as the run. Every
 * interval it resolves the watched references in one `/secrets/resolve` call (one more per
 * reference that cannot be resolved at that moment: the call fails at its first unresolvable
 * reference, which is dropped and the rest asked again) and brings the files in line:
 *
 * - a new value (another version, or another value) replaces its file whole: a temporary 0600
 *   file beside it, then a rename over it (`replacePrivateFile`), so a reader sees the old
 *   content or the new, never a mix; same path, mode 0600;
 * - a reference the service refuses (deleted, destroyed, pruned, no longer readable) removes its
 *   file; the file comes back, whole, when the reference resolves again (a new version, an
 *   undelete);
 * - after any batch of changes (one poll), the command gets `--reload-signal` once;
 * - a refusal of the whole call (a 4xx without a reference's index: e.g. 403 when sealed
 *   delivery is required, which a run cannot receive) removes every file until the service
 *   answers with the values again;
 * - when the run is over — the service answers 401 for it (completed, revoked, expired), or its
 *   `expires_at` passes by the local clock (checked at least every second, so a suspend or a
 *   clock jump cannot carry the files past it) — everything in the directory is removed
 *   (whatever is there: temporary files, what the command made) and then the owner is told
 *   (`onEnd`: `run exec` sends SIGTERM to the command). Nothing is written after that;
 * - when the service cannot be reached (no answer, 5xx, 429, an answer that is not one, such
 *   as a value that is not that of the reference asked),
 *   the files stay as they are until the service answers again or the run expires, never
 *   longer: one stderr line when that starts, one when it ends.
 *
 * Without references, the run's public status (GET /.well-known/agentpack-agent-identity/<id>)
 * is polled instead, only to end the command with its run.
 *
 * Only names, versions and reasons are printed, never a value. Values are held only while they
 * are written; the watch remembers a SHA-256 of each, to tell a change.
 */
import { createHash } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, NAME, nowMs, type CliIo } from './io.js';
import { emptyPrivateDir, replacePrivateFile } from './private-files.js';
import { runHeaders, type RunDir } from './run-dir.js';
import { describeAnswer, post, REQUEST_TIMEOUT_MS } from './service.js';
import { CANNOT_CHECK, outcomeOf, type Outcome } from './watch-answers.js';

/**
 * The longest step of the expiry timer: one long timeout counts the time the machine runs, not
 * the clock's, so after a suspend or a forward jump of the clock it would fire late. Each step
 * checks the clock against `expires_at` again.
 */
const EXPIRY_STEP_MS = 1000;

/** One watched file: its reference, and what it holds now (null: no file). */
interface Entry {
  name: string;
  ref: string;
  file: string;
  held: { version: number; digest: string } | null;
  /** The last write or removal failure printed for it, so it is printed once. */
  failure: string | null;
}

export interface WatchOptions {
  run: RunDir;
  /** The private directory the files are in (emptied, all of it, when the run is over). */
  dir: string;
  /** The references, with the version and value each file was first written with. */
  secrets: ReadonlyArray<{ name: string; ref: string; version: number; value: string }>;
  intervalMs: number;
  io: CliIo;
  /** After a batch of changes to the files (called once per poll that changed any). */
  onChange(): void;
  /** The run is over: the directory is emptied already (or said why not); nothing is watched. */
  onEnd(): void;
}

export interface SecretWatch {
  /** Stops watching (the command ended): no request or write after this resolves. */
  stop(): Promise<void>;
  /** Whether the watch saw the run end (and removed the files). */
  ended(): boolean;
}

const digestOf = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');
const errno = (error: unknown) => (error as NodeJS.ErrnoException).code ?? 'error';

/** Starts watching; the first poll is one interval away. */
export function startSecretWatch(options: WatchOptions): SecretWatch {
  // Only what the watch needs is kept: not `options.secrets`, which holds the first values.
  const { run, dir, io, intervalMs, onChange, onEnd } = options;
  const runId = run.info.run_id;
  const expiresAt = run.info.expires_at;
  const expiryMs = Date.parse(expiresAt);
  const say = (line: string) => io.stderr(`${NAME}: watch: ${line}\n`);
  const entries: Entry[] = options.secrets.map((s) => ({
    name: s.name,
    ref: s.ref,
    file: join(dir, s.name),
    held: { version: s.version, digest: digestOf(s.value) },
    failure: null,
  }));

  let stopped = false;
  let over = false;
  /** What is wrong now, printed once when it starts: null when the last poll went well. */
  let trouble: 'unreachable' | 'refused' | null = null;
  let pollTimer: NodeJS.Timeout | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | null = null;
  const abort = new AbortController();

  const clearTimers = () => {
    clearTimeout(pollTimer);
    clearTimeout(expiryTimer);
  };

  /** Removes one file; true when it is gone. A failure is printed once. */
  const removeFile = (entry: Entry, why: string): boolean => {
    try {
      unlinkSync(entry.file);
    } catch (error) {
      if (errno(error) !== 'ENOENT') {
        const failure = `cannot remove ${entry.file} (${errno(error)}): it holds a secret that is ${why}`;
        if (entry.failure !== failure) say(failure);
        entry.failure = failure;
        return false;
      }
    }
    entry.held = null;
    entry.failure = null;
    return true;
  };

  /** Writes one file whole (temporary file, rename); true when written. */
  const writeFile = (entry: Entry, version: number, value: string, digest: string): boolean => {
    try {
      replacePrivateFile(entry.file, value);
    } catch (error) {
      const failure =
        error instanceof CliError ? error.message : `cannot write ${entry.file} (${errno(error)})`;
      if (entry.failure !== failure) say(`${failure}: it keeps what it held`);
      entry.failure = failure;
      return false;
    }
    entry.held = { version, digest };
    entry.failure = null;
    return true;
  };

  /**
   * The run is over: everything in the directory goes (not only the files known here: a
   * temporary file, what the command wrote), nothing is watched any more, then the owner is
   * told. The line says what could not be removed, by name.
   */
  const end = (why: string) => {
    if (stopped) return;
    stopped = true;
    over = true;
    clearTimers();
    abort.abort();
    const left = emptyPrivateDir(dir);
    for (const entry of entries) entry.held = null;
    if (left.length === 0) {
      say(`${why}: the secret files are removed and the command is sent SIGTERM`);
    } else {
      say(
        `${why}: cannot remove ${left.join(', ')} in ${dir} (remove them by hand: they may hold secrets); the rest is removed and the command is sent SIGTERM`,
      );
    }
    onEnd();
  };

  const expired = () => nowMs(io) >= expiryMs;
  const expiredLine = () => `run ${runId} expired at ${expiresAt}`;

  /** Arms the local expiry, in steps of at most EXPIRY_STEP_MS, each checking the clock. */
  const armExpiry = () => {
    if (stopped) return;
    const left = expiryMs - nowMs(io);
    if (!(left > 0)) return end(expiredLine());
    expiryTimer = setTimeout(armExpiry, Math.min(left, EXPIRY_STEP_MS));
  };

  /** Why the run is over, for the line: its public status when the service says. */
  const endedLine = async (why: string): Promise<string> => {
    if (expired()) return expiredLine();
    try {
      const res = await fetch(`${run.info.url}/.well-known/agentpack-agent-identity/${runId}`, {
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), abort.signal]),
      });
      const status = ((await res.json()) as { status?: unknown }).status;
      if (
        res.status === 200 &&
        typeof status === 'string' &&
        status !== 'active' &&
        /^[a-z]{1,20}$/.test(status)
      ) {
        return `run ${runId} is ${status}`;
      }
    } catch {
      // the refusal says enough
    }
    return `the service refuses run ${runId} (${why})`;
  };

  /** One `/secrets/resolve` as the run for the references of `asked`. */
  const resolve = async (asked: readonly Entry[]): Promise<Outcome> => {
    const path = '/secrets/resolve';
    const body = JSON.stringify({ refs: asked.map((e) => e.ref) });
    try {
      const res = await post(
        `${run.info.url}${path}`,
        runHeaders(run, path, body, io),
        body,
        CANNOT_CHECK,
        REQUEST_TIMEOUT_MS,
        abort.signal,
      );
      return outcomeOf(res.status, res.text, asked);
    } catch (error) {
      return { kind: 'unreachable', why: (error as Error).message };
    }
  };

  /** Without references: only whether the run is still on, from its public status. */
  const runStatus = async (): Promise<Outcome> => {
    const url = `${run.info.url}/.well-known/agentpack-agent-identity/${runId}`;
    try {
      const res = await fetch(url, {
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), abort.signal]),
      });
      const text = await res.text();
      if (res.status === 404) return { kind: 'ended', why: 'HTTP 404: the run is unknown' };
      if (res.status !== 200) {
        return {
          kind: 'unreachable',
          why: `cannot check the run: ${describeAnswer(res.status, text)}`,
        };
      }
      let status: unknown;
      try {
        status = (JSON.parse(text) as { status?: unknown } | null)?.status;
      } catch {
        status = undefined; // not JSON: no status
      }
      if (status === 'active') return { kind: 'values', values: [] };
      if (typeof status === 'string') return { kind: 'ended', why: `status ${status}` };
      return { kind: 'unreachable', why: 'cannot check the run: the answer has no status' };
    } catch (error) {
      const name = (error as Error).name;
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return {
        kind: 'unreachable',
        why: `cannot check the run: cannot reach ${url} (${cause ?? (name === 'TimeoutError' ? 'timeout' : 'network error')})`,
      };
    }
  };

  /** One poll: asks, then brings the files in line with the answer. */
  const poll = async (): Promise<void> => {
    if (expired()) return end(expiredLine());
    const changes: string[] = [];
    /** What the service gave, by entry; an entry it refused maps to its reason. */
    const answered = new Map<Entry, { version: number; value: string } | string>();
    let pending = entries.slice();
    let last: Outcome;
    for (;;) {
      last = entries.length === 0 ? await runStatus() : await resolve(pending);
      if (stopped) return;
      if (last.kind !== 'unresolvable') break;
      const { index, reason } = last;
      answered.set(pending[index]!, reason);
      pending = pending.filter((_, i) => i !== index);
      if (pending.length === 0) break;
    }
    if (last.kind === 'ended') return end(await endedLine(last.why));
    if (stopped) return;
    if (last.kind === 'values') last.values.forEach((v, i) => answered.set(pending[i]!, v));

    // What the service said about each reference, it said: apply it, even in trouble.
    for (const [entry, answer] of answered) {
      if (typeof answer === 'string') {
        if (entry.held !== null && removeFile(entry, answer)) {
          changes.push(`${entry.name} removed (${answer})`);
        }
        continue;
      }
      const digest = digestOf(answer.value);
      const before = entry.held;
      if (before !== null && before.version === answer.version && before.digest === digest) {
        continue;
      }
      if (writeFile(entry, answer.version, answer.value, digest)) {
        changes.push(
          `${entry.name} ${before === null ? 'written' : 'replaced'} (version ${answer.version})`,
        );
      }
    }
    answered.clear();

    if (last.kind === 'refused') {
      // The whole call refused: the run may read none of them now.
      for (const entry of entries) {
        if (entry.held !== null && removeFile(entry, 'refused')) {
          changes.push(`${entry.name} removed (refused)`);
        }
      }
      if (trouble !== 'refused') {
        say(
          `the service refuses the run its secrets (${last.why}): the secret files are removed until it answers with them`,
        );
      }
      trouble = 'refused';
    } else if (last.kind === 'unreachable') {
      if (trouble !== 'unreachable') {
        say(
          `${last.why}; the secret files stay as they are until the service answers, at most until the run expires at ${expiresAt}`,
        );
      }
      trouble = 'unreachable';
    } else if (trouble !== null) {
      say('the service answers again: the secret files are current');
      trouble = null;
    }

    for (const line of changes) say(line);
    if (changes.length > 0) onChange();
  };

  const schedule = () => {
    if (stopped) return;
    pollTimer = setTimeout(() => {
      inFlight = poll()
        .catch((error: unknown) => {
          // Not expected (every failure is an outcome); never let it end run exec.
          say(`a poll failed (${(error as Error).message ?? 'error'})`);
        })
        .finally(() => {
          inFlight = null;
          schedule();
        });
    }, intervalMs);
  };

  armExpiry();
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimers();
      abort.abort();
      await inFlight;
    },
    ended: () => over,
  };
}

/**
 * The watch of `run exec`'s command: `reloadSignal` (if any) after each batch of changes; when
 * the run is over, `onRunEnd`, then SIGTERM. `signal` signals the command while it runs.
 */
export function watchCommand(
  options: Omit<WatchOptions, 'onChange' | 'onEnd'> & {
    reloadSignal: NodeJS.Signals | null;
    signal(signal: NodeJS.Signals): void;
    onRunEnd(): void;
  },
): SecretWatch {
  const { reloadSignal, signal, onRunEnd, ...watch } = options;
  return startSecretWatch({
    ...watch,
    onChange: () => {
      if (reloadSignal !== null) signal(reloadSignal);
    },
    onEnd: () => {
      onRunEnd();
      signal('SIGTERM');
    },
  });
}
