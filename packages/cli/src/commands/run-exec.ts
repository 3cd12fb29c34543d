/**
 * `run exec`: runs a command as a run. It resolves the run's secret references into files of a
 * private temporary directory that only the command's environment *names* (values never in the
 * environment, argv, logs or state), removes the directory when the command ends, whatever
 * happened, and then completes the run. With `--watch`, the files are kept current while the
 * command runs (secret-watch.ts), and the command is ended when the run is.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import {
  CREDENTIAL_VALUE_PATTERN,
  EXEC_ENV,
  SECRET_NAME_PATTERN,
  SECRET_REF_PREFIX,
} from '@agentpack-identity/protocol';
import { CliError, NAME, nowMs, usage, type CliIo, type Command } from '../io.js';
import { intOption, parseOptions, required } from '../options.js';
import { loadProviders, parseBrokers, type Brokered } from '../broker/providers.js';
import { startBrokerFor } from '../broker/start.js';
import type { Broker } from '../broker/server.js';
import { postAsRun, readRunDir, type RunDir } from '../run-dir.js';
import { watchCommand, type SecretWatch } from '../secret-watch.js';
import { normaliseWatchOption, parseWatchOptions, WATCH_VALUES } from '../watch-options.js';
import { WATCH_HELP, WATCH_INTERVAL_ENV, WATCH_OPTIONS_HELP } from '../watch-options.js';
import { answerObject, describeAnswer, REQUEST_TIMEOUT_MS } from '../service.js';

/**
 * Policy: the operator's own credentials are not handed to the workload. A run exists so that
 * the command acts with the run's narrow rights only; a bridge key or the local KEK inherited
 * from the operator's shell would undo that.
 */
/** What the command never gets: the operator's and host's credentials (and paths), a test knob. */
const WITHHELD_ENV = [
  'AGENTPACK_BRIDGE_KEY',
  'AGENTPACK_BRIDGE_KEYS',
  'AGENTPACK_BRIDGE_KEY_FILE',
  'AGENTPACK_DEVICE_KEY_FILE',
  'AGENTPACK_SECRETS_KEK',
  'AGENTPACK_DIGEST_KEY',
  'AGENTPACK_PROFILE',
  'AGENTPACK_CONFIG',
  WATCH_INTERVAL_ENV,
];

/** The signals `run exec` passes on to the command instead of dying of them. */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

const HELP = `usage: ${NAME} run exec --run-dir DIR [--ref NAME=REF ...]
       [--watch [SECONDS] [--reload-signal SIG]]
       [--device-dir KEYS --broker PROVIDER=REF ... [--broker-providers FILE]
        [--broker-max-requests N]] -- COMMAND [ARGS...]

Runs COMMAND as the run in DIR (written by "run spawn"), with its secrets in files, never in
its environment:
  1. resolves every REF (agentpack.secret://AGENT/NAME[#VERSION]) in one call: POST
     URL/secrets/resolve as the run (x-agentpack-run, signed with DIR/run.key);
  2. writes each value to the file NAME (mode 0600) of a new private temporary directory
     (mode 0700; under $XDG_RUNTIME_DIR when it is private, else the system's temporary
     directory);
  3. runs COMMAND (no shell) with ${EXEC_ENV.secretsDir} set to that directory's path,
     ${EXEC_ENV.runId} and ${EXEC_ENV.runDir} to the run's id and DIR, and without
     ${WITHHELD_ENV.join(', ')}; SIGINT, SIGTERM and SIGHUP are passed on to it;
  4. when it ends, removes the directory (whatever happened), then completes the run: POST
     URL/runs/complete as the run ends it and every run spawned under it.

${WATCH_HELP}

With --broker, a credential broker runs on 127.0.0.1 beside COMMAND: the real key of each
PROVIDER (REF read sealed with the host's enrolled device in KEYS, written by "device keygen"
and "device enroll"; held in memory only) never reaches COMMAND, whose environment gets the
provider's base-URL variables (http://127.0.0.1:PORT/PROVIDER...) and a placeholder key
(apbk_...) instead. The broker forwards to the provider's fixed https origin only, swapping the
placeholder for the real key; one line per request goes to stderr. Built-in providers: openai
(OPENAI_BASE_URL, OPENAI_API_KEY), anthropic (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY), gemini
(GOOGLE_GEMINI_BASE_URL, GEMINI_API_KEY, GOOGLE_API_KEY); FILE adds others:
  {"providers": {"NAME": {"origin": "https://host[:port]", "path_prefix": "/v1",
   "base_path": "/v1", "auth_header": "authorization", "auth_format": "Bearer {key}",
   "base_url_env": ["..."], "key_env": ["..."], "ca_file": "ca.pem"}}}
An unknown provider or an origin that is not https is exit code 2; a key that cannot be read
or a broker that cannot start is exit code 1; COMMAND is not run either way.

Exits with COMMAND's exit code (128+N when signal N ended it, 127 when it cannot be started).
If a reference cannot be resolved, COMMAND is not run, nothing is written, and the run is left
as it is (not completed, so it can be inspected: revoke it or let it expire); exit code 1.
When COMMAND succeeded but the directory could not be removed or the run is still active
because it could not be completed, the exit code is 1. No secret value is ever printed.

options:
  --run-dir DIR      the run's directory (run.json, run.key)
  --ref NAME=REF     resolve REF into the file NAME (letters, digits, "_", "." and "-",
                     starting with a letter or digit); may be given several times
  --device-dir KEYS  the host's enrolled device directory (with --broker)
  --broker PROVIDER=REF
                     broker PROVIDER with the key REF; may be given for several providers
  --broker-providers FILE
                     more providers (JSON, above)
  --broker-max-requests N
                     the broker answers 429 from the N+1st request on
${WATCH_OPTIONS_HELP}
  -h, --help         this help
`;

/** `NAME=REF` pairs, checked: safe file names, each once; refs of the right form. */
function parseRefs(pairs: readonly string[]): Array<{ name: string; ref: string }> {
  const seen = new Set<string>();
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq);
    const ref = pair.slice(eq + 1);
    if (eq === -1 || !SECRET_NAME_PATTERN.test(name)) {
      throw usage(
        '--ref must be NAME=REF with NAME made of letters, digits, "_", "." and "-", starting with a letter or digit',
      );
    }
    if (!ref.startsWith(SECRET_REF_PREFIX) || !CREDENTIAL_VALUE_PATTERN.test(ref)) {
      throw usage(`--ref ${name}: the reference must be ${SECRET_REF_PREFIX}AGENT/NAME[#VERSION]`);
    }
    if (seen.has(name)) throw usage(`--ref ${name} given more than once`);
    seen.add(name);
    return { name, ref };
  });
}

/** Resolves the refs as the run, in one call; the values (and versions) in the order of `refs`. */
async function resolveRefs(
  run: RunDir,
  refs: ReadonlyArray<{ name: string; ref: string }>,
  io: CliIo,
): Promise<Array<{ value: string; version: number }>> {
  const failure = 'cannot resolve the secrets';
  const body = JSON.stringify({ refs: refs.map((r) => r.ref) });
  const res = await postAsRun(run, '/secrets/resolve', body, failure, io);
  const answer = answerObject(res.status, res.text, failure, (s) => s === 200);
  const values = answer['values'];
  if (!Array.isArray(values) || values.length !== refs.length) {
    throw new CliError(`${failure}: the answer does not have one value per reference`);
  }
  return values.map((item: unknown, index) => {
    const { ref, value, version } = (item ?? {}) as Record<string, unknown>;
    if (ref !== refs[index]!.ref || typeof value !== 'string' || !Number.isSafeInteger(version)) {
      throw new CliError(
        `${failure}: the answer's value ${index} is not that of --ref ${refs[index]!.name}`,
      );
    }
    return { value, version: version as number };
  });
}

/**
 * Where the private temporary directory goes: `$XDG_RUNTIME_DIR` when it is a private
 * directory of ours (a per-user tmpfs on systemd machines: the values never reach a disk),
 * else the system's temporary directory.
 */
function secretsParent(env: CliIo['env']): string {
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime !== undefined && isAbsolute(runtime)) {
    try {
      const stat = statSync(runtime);
      const ours = typeof process.getuid !== 'function' || stat.uid === process.getuid();
      if (stat.isDirectory() && ours && (stat.mode & 0o077) === 0) return runtime;
    } catch {
      // not usable: fall back
    }
  }
  return tmpdir();
}

/** Makes the private directory and writes one 0600 file per value; removes it on failure. */
function writeSecretsDir(
  env: CliIo['env'],
  refs: ReadonlyArray<{ name: string; ref: string }>,
  values: ReadonlyArray<{ value: string }>,
): string {
  let dir: string;
  try {
    dir = mkdtempSync(join(secretsParent(env), 'agentpack-secrets-'));
    chmodSync(dir, 0o700);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot create a private temporary directory (${code ?? 'error'})`);
  }
  try {
    refs.forEach(({ name }, index) => {
      const file = join(dir, name);
      writeFileSync(file, values[index]!.value, { mode: 0o600, flag: 'wx' });
      chmodSync(file, 0o600);
    });
  } catch (error) {
    removeDir(dir);
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot write the secrets' files (${code ?? 'error'})`);
  }
  return dir;
}

/** Removes the secrets directory; returns why it could not, or null. */
function removeDir(dir: string): string | null {
  try {
    // The command may have taken its own permissions away: give them back first.
    chmodSync(dir, 0o700);
  } catch {
    // gone already, or not ours to change: rmSync says which
  }
  try {
    rmSync(dir, { recursive: true, force: true });
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'error';
  }
}

/**
 * How the command ended, as an exit code: its own, 128+N for signal N, 126/127 for no start.
 * `started` is called once the command runs, with a function that signals it while it does.
 */
function runCommand(
  command: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CliIo,
  started?: (signal: (signal: NodeJS.Signals) => void) => void,
): Promise<number> {
  return new Promise((resolveCode) => {
    let child: ChildProcess;
    const forward = (signal: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    let settled = false;
    const done = (code: number) => {
      if (settled) return; // Node may report a failed start as both an error and an exit
      settled = true;
      for (const signal of FORWARDED_SIGNALS) process.removeListener(signal, forward);
      resolveCode(code);
    };
    const failed = (error: NodeJS.ErrnoException) => {
      io.stderr(`${NAME}: cannot run ${JSON.stringify(command[0])} (${error.code ?? 'error'})\n`);
      done(error.code === 'ENOENT' ? 127 : 126);
    };
    // Installed before the command starts, so no signal can end us and leave the files behind.
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    try {
      child = spawn(command[0]!, command.slice(1), { env, stdio: 'inherit', shell: false });
    } catch (error) {
      return failed(error as NodeJS.ErrnoException); // e.g. a NUL byte in an argument
    }
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) failed(error); // else it started: its exit still comes
    });
    if (child.pid !== undefined) started?.(forward);
    child.once('exit', (code, signal) => {
      if (child.pid === undefined) return; // never started: the error says why
      if (code !== null) return done(code);
      const number = signal === null ? undefined : osConstants.signals[signal];
      done(128 + (number ?? 0));
    });
  });
}

/** GETs a run's public status; null when it cannot be had. */
async function publicStatus(run: RunDir): Promise<string | null> {
  try {
    const res = await fetch(
      `${run.info.url}/.well-known/agentpack-agent-identity/${run.info.run_id}`,
      {
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      },
    );
    const body = (await res.json()) as { status?: unknown };
    return res.status === 200 && typeof body.status === 'string' ? body.status : null;
  } catch {
    return null;
  }
}

/** Completes the run; returns why that failed and the run is still live, or null. */
async function completeRun(run: RunDir, io: CliIo): Promise<string | null> {
  let reason: string;
  try {
    const res = await postAsRun(run, '/runs/complete', '{}', 'cannot complete the run', io);
    if (res.status === 200) return null;
    reason = describeAnswer(res.status, res.text);
  } catch (error) {
    reason = (error as Error).message;
  }
  // Refused because it already ended (expired, revoked, or completed by a parent): it is over.
  const status = await publicStatus(run);
  if (status !== null && status !== 'active') {
    io.stderr(`${NAME}: run ${run.info.run_id} was not completed: it is already ${status}\n`);
    return null;
  }
  // Past its expiry by our clock (as a watch that cannot reach the service ends it): over.
  const { run_id, expires_at } = run.info;
  if (status === null && Date.parse(expires_at) <= nowMs(io)) {
    io.stderr(
      `${NAME}: run ${run_id} was not completed (${reason}): it expired at ${expires_at}\n`,
    );
    return null;
  }
  return `cannot complete run ${run.info.run_id} (${reason}): it stays active until ${run.info.expires_at}; revoke it`;
}

/** The broker options, checked (before anything is read or sent), or null without --broker. */
function parseBrokerOptions(opts: {
  broker: string[];
  'device-dir'?: string;
  'broker-providers'?: string;
  'broker-max-requests'?: string;
}): { deviceDir: string; list: Brokered[]; maxRequests: number | null } | null {
  if (opts.broker.length === 0) {
    for (const name of ['device-dir', 'broker-providers', 'broker-max-requests'] as const) {
      if (opts[name] !== undefined) throw usage(`--${name} goes with --broker`);
    }
    return null;
  }
  const deviceDir = required(opts['device-dir'], 'device-dir');
  const list = parseBrokers(opts.broker, loadProviders(opts['broker-providers']));
  const max = intOption(opts['broker-max-requests'], 'broker-max-requests', 1, 1_000_000_000);
  return { deviceDir, list, maxRequests: max ?? null };
}

async function runExec(args: readonly string[], io: CliIo): Promise<number> {
  const split = args.indexOf('--');
  if (split === -1) throw usage('the command goes after "--": run exec --run-dir DIR -- COMMAND');
  const command = args.slice(split + 1);
  if (command.length === 0 || command[0] === '') throw usage('no command after "--"');
  const opts = parseOptions(normaliseWatchOption(args.slice(0, split)), {
    values: ['run-dir', 'device-dir', 'broker-providers', 'broker-max-requests', ...WATCH_VALUES],
    repeatable: ['ref', 'broker'],
  });
  const runDir = required(opts['run-dir'], 'run-dir');
  const refs = parseRefs(opts.ref);
  const watch = parseWatchOptions(opts, io);
  const brokered = parseBrokerOptions(opts);
  const run = readRunDir(runDir, '--run-dir');
  const { run_id, expires_at } = run.info;
  if (Date.parse(expires_at) <= nowMs(io)) {
    throw new CliError(`run ${run_id} expired at ${expires_at}: spawn a new one`);
  }

  let values: Array<{ value: string; version: number }> = [];
  if (refs.length > 0) {
    try {
      values = await resolveRefs(run, refs, io);
    } catch (error) {
      // Policy: nothing ran, so the run is left as it is for the operator to look at.
      const message = error instanceof Error ? error.message : String(error);
      throw new CliError(
        `${message}; the command was not run, and run ${run_id} was not completed (revoke it or let it expire)`,
      );
    }
  }

  let broker: Broker | null = null;
  if (brokered !== null) {
    try {
      broker = await startBrokerFor(run, brokered, io);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new CliError(
        `${message}; the command was not run, and run ${run_id} was not completed (revoke it or let it expire)`,
      );
    }
  }

  const env: NodeJS.ProcessEnv = { ...io.env };
  for (const name of WITHHELD_ENV) delete env[name];
  if (broker !== null) Object.assign(env, broker.env());
  let dir: string;
  try {
    dir = writeSecretsDir(io.env, refs, values);
  } catch (error) {
    await broker?.close();
    throw error;
  }
  // What the watch starts from: each file's version and value (it keeps only a digest).
  let initial = watch === null ? [] : refs.map((r, i) => ({ ...r, ...values[i]! }));
  values = [];
  env[EXEC_ENV.secretsDir] = dir;
  env[EXEC_ENV.runId] = run_id;
  env[EXEC_ENV.runDir] = resolve(runDir);

  // The broker stops once, with the command or with the run, and its keys are zeroed.
  let brokerClosed: Promise<void> | null = null;
  const closeBroker = () => (brokerClosed ??= broker?.close() ?? Promise.resolve());
  let watcher: SecretWatch | null = null;
  let code = 1;
  try {
    code = await runCommand(command, env, io, (signal) => {
      // The run's end ends what it gave the command: its files (the watch removes them), the
      // broker, and then the command itself (SIGTERM).
      const onRunEnd = () => void closeBroker();
      if (watch !== null) {
        watcher = watchCommand({ run, dir, secrets: initial, io, ...watch, signal, onRunEnd });
      }
      initial = [];
    });
  } finally {
    await (watcher as SecretWatch | null)?.stop();
    await closeBroker();
    // Whatever happened to the command: the values do not outlive it.
    const problem = removeDir(dir);
    if (problem !== null) {
      io.stderr(
        `${NAME}: cannot remove ${dir} (${problem}): remove it by hand, it holds secrets\n`,
      );
      if (code === 0) code = 1;
    }
  }
  const problem = await completeRun(run, io);
  if (problem !== null) {
    io.stderr(`${NAME}: ${problem}\n`);
    if (code === 0) code = 1;
  }
  return code;
}

export const EXEC: Command = { help: HELP, run: runExec };
