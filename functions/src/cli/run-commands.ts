/**
 * The `run` commands: ephemeral runs from the workload's side (API.md "Ephemeral runs").
 *
 * `run spawn` generates the run's Ed25519 key here — a fresh one for every run, so two runs
 * never share a key — sends only its public half to `/runs/spawn`, and writes the run's
 * directory: `run.key` (the private seed, 0600, never printed) and `run.json` (its id, lineage,
 * scope, end and the service's URL). `run exec` runs a command as that run: it resolves the
 * run's secret references into files of a private temporary directory that only the command's
 * environment *names* (seed 000: values never in the environment, argv, logs or state), removes
 * the directory when the command ends, whatever happened, and then completes the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { KeyObject } from 'node:crypto';
import { isWellFormedDeviceKey } from '../auth/device-key-format.js';
import {
  decodeRawKey,
  ed25519PrivateKeyObject,
  encodeRawKey,
  generateDeviceKeys,
  signRequest,
} from '../crypto/device-keys-format.js';
import {
  answerObject,
  CliError,
  describeAnswer,
  NAME,
  parseOptions,
  post,
  readPrivateFile,
  refuseExisting,
  REQUEST_TIMEOUT_MS,
  required,
  serviceUrl,
  TOKEN_TEXT,
  usage,
  writePrivateFile,
  type CliIo,
} from './common.js';

/** The files of a run directory (`run spawn --out DIR`, `--run-dir DIR`, `--parent-dir DIR`). */
export const RUN_FILES = { key: 'run.key', info: 'run.json' } as const;

/** The environment `run exec` gives the command: paths and the public run id, never a value. */
export const EXEC_ENV = {
  secretsDir: 'AGENTPACK_SECRETS_DIR',
  runId: 'AGENTPACK_RUN_ID',
  runDir: 'AGENTPACK_RUN_DIR',
} as const;

/**
 * Policy: the operator's own credentials are not handed to the workload. A run exists so that
 * the command acts with the run's narrow rights only; a bridge key or the local KEK inherited
 * from the operator's shell would undo that.
 */
const WITHHELD_ENV = ['AGENTPACK_BRIDGE_KEY', 'AGENTPACK_BRIDGE_KEYS', 'AGENTPACK_SECRETS_KEK'];

const DEFAULT_RUN_TTL_SECONDS = 300;
const MAX_RUN_JSON_BYTES = 64 * 1024;
/** Run ids as the service makes them (`core/runs.ts`): `run_` + 128 random bits. */
const RUN_ID = /^run_[A-Za-z0-9_-]{22}$/;
/** A secret's file name in the secrets directory: a secret name (API.md), so never `..` or `/`. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SECRET_REF_PREFIX = 'agentpack.secret://';
/** The signals `run exec` passes on to the command instead of dying of them. */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export const RUN_HELP = {
  run: `usage: ${NAME} run spawn --url URL --device-key-file FILE --task TASK --scope RPC[,RPC...]
           [--ttl SECONDS] --out DIR
       ${NAME} run spawn --parent-dir DIR --task TASK --scope RPC[,RPC...]
           [--ttl SECONDS] --out DIR
       ${NAME} run exec --run-dir DIR [--ref NAME=REF ...] -- COMMAND [ARGS...]

Run "${NAME} run COMMAND --help" for a command's options.
`,
  spawn: `usage: ${NAME} run spawn --url URL --device-key-file FILE --task TASK
    --scope RPC[,RPC...] [--ttl SECONDS] --out DIR
       ${NAME} run spawn --parent-dir DIR [--url URL] --task TASK
    --scope RPC[,RPC...] [--ttl SECONDS] --out DIR

Spawns an ephemeral run: an identity of the agent for one task, with its own Ed25519 key. The
key is generated here, a fresh one every time, and only its public half is sent: POST
URL/runs/spawn with {task, scope, ttl_seconds, public_key}, authenticated with the agent's
device key from FILE (x-agentpack-device-key; when FILE is the device-key of a "device enroll"
directory, the request is also signed with that directory's signing.key), or with --parent-dir
as the run in that directory (x-agentpack-run, signed with its run.key): a child run, within
its parent's scope and life.

Creates DIR (mode 0700) if it does not exist and writes, each mode 0600 and never over an
existing file:
  DIR/run.key    the run's Ed25519 private key (its 32-byte seed, base64url)
  DIR/run.json   {run_id, agent_id, parent_run_id, root_run_id, lineage, scope, created_at,
                 expires_at, url}
Prints run_id, lineage and expires_at (never the key). Hand DIR to the workload, e.g.
"${NAME} run exec --run-dir DIR -- COMMAND".

options:
  --url URL               the service's base URL; plain http only to loopback addresses
                          (with --parent-dir, default: the parent's)
  --device-key-file FILE  the agent's device key (a file only its owner can read)
  --parent-dir DIR        spawn a child of the run in DIR instead (its run.json and run.key)
  --task TASK             what the run is for (audited)
  --scope LIST            comma-separated RPCs, each optionally narrowed to one resource,
                          e.g. secrets/get:openai_key,runs/spawn; no wider than the spawner's
  --ttl SECONDS           lifetime (default ${DEFAULT_RUN_TTL_SECONDS}; the service refuses more
                          than runs.max_ttl_seconds, default 900, and ends a child with its
                          parent)
  --out DIR               where to write the run's files
  -h, --help              this help
`,
  exec: `usage: ${NAME} run exec --run-dir DIR [--ref NAME=REF ...] -- COMMAND [ARGS...]

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

Exits with COMMAND's exit code (128+N when signal N ended it, 127 when it cannot be started).
If a reference cannot be resolved, COMMAND is not run, nothing is written, and the run is left
as it is (not completed, so it can be inspected: revoke it or let it expire); exit code 1.
When COMMAND succeeded but the directory could not be removed or the run is still active
because it could not be completed, the exit code is 1. No secret value is ever printed.

options:
  --run-dir DIR      the run's directory (run.json, run.key)
  --ref NAME=REF     resolve REF into the file NAME (letters, digits, "_", "." and "-",
                     starting with a letter or digit); may be given several times
  -h, --help         this help
`,
} as const;

/** `run.json`: what `run spawn` learnt about the run, and where its service is. */
interface RunInfo {
  run_id: string;
  agent_id: string;
  parent_run_id: string | null;
  root_run_id: string;
  lineage: string[];
  scope: string[];
  created_at: string;
  expires_at: string;
  url: string;
}

/** A run directory, read: its info and its private key, ready to sign. */
interface RunDir {
  info: RunInfo;
  key: KeyObject;
}

const nowMs = (io: CliIo) => io.now?.() ?? Date.now();

const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((v) => typeof v === 'string');

/** The headers of a request made as the run: its id and the signature by its key. */
function runHeaders(run: RunDir, path: string, body: string, io: CliIo): Record<string, string> {
  return {
    'x-agentpack-run': run.info.run_id,
    ...signRequest({ method: 'POST', path, body, signingSeed: run.key, nowMs: nowMs(io) }),
  };
}

/** POSTs `body` (a JSON text) to the route `path` as the run. */
function postAsRun(run: RunDir, path: string, body: string, failure: string, io: CliIo) {
  return post(
    `${run.info.url}${path}`,
    runHeaders(run, path, body, io),
    body,
    failure,
    REQUEST_TIMEOUT_MS,
  );
}

/** Reads and checks a run directory written by `run spawn`. Never echoes a file. */
function readRunDir(dir: string, option: string): RunDir {
  const infoFile = join(dir, RUN_FILES.info);
  let text: string;
  try {
    const stat = statSync(infoFile);
    if (!stat.isFile()) throw new CliError(`${infoFile} is not a file`);
    if (stat.size > MAX_RUN_JSON_BYTES) throw new CliError(`${infoFile} is too large`);
    text = readFileSync(infoFile, 'utf8');
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CliError(`${option}: ${infoFile} is missing (a directory written by "run spawn")`);
    }
    throw new CliError(`cannot read ${infoFile} (${code ?? 'error'})`);
  }
  let info: Partial<Record<keyof RunInfo, unknown>>;
  try {
    info = JSON.parse(text) as typeof info;
  } catch {
    throw new CliError(`${infoFile} is not JSON`);
  }
  if (
    typeof info !== 'object' ||
    info === null ||
    typeof info.run_id !== 'string' ||
    !RUN_ID.test(info.run_id) ||
    typeof info.url !== 'string' ||
    typeof info.expires_at !== 'string' ||
    !isStringArray(info.lineage)
  ) {
    throw new CliError(`${infoFile} is not a run's run.json`);
  }
  const url = serviceUrl(info.url, `${infoFile} "url"`);
  const seed = decodeRawKey(readPrivateFile(join(dir, RUN_FILES.key)));
  if (seed === null) {
    throw new CliError(`${join(dir, RUN_FILES.key)} is not a raw 32-byte key in base64url`);
  }
  try {
    return { info: { ...(info as RunInfo), url }, key: ed25519PrivateKeyObject(seed) };
  } finally {
    seed.fill(0);
  }
}

/**
 * The device key of `file`, and the signing key of its enrolled device when `file` is the
 * `device-key` of a `device enroll` directory (signed requests may be required of it).
 */
function readDeviceCredential(file: string): { deviceKey: string; signingKey: KeyObject | null } {
  const deviceKey = readPrivateFile(file);
  if (!isWellFormedDeviceKey(deviceKey)) throw new CliError(`${file} does not hold a device key`);
  const dir = dirname(file);
  const enrolled =
    basename(file) === 'device-key' &&
    isFile(join(dir, 'signing.key')) &&
    isFile(join(dir, 'enrollment.json'));
  if (!enrolled) return { deviceKey, signingKey: null };
  const seed = decodeRawKey(readPrivateFile(join(dir, 'signing.key')));
  if (seed === null) {
    throw new CliError(`${join(dir, 'signing.key')} is not a raw 32-byte key in base64url`);
  }
  try {
    return { deviceKey, signingKey: ed25519PrivateKeyObject(seed) };
  } finally {
    seed.fill(0);
  }
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Creates `dir` (exactly 0700 when created here) or accepts an existing directory. */
function makePrivateDir(dir: string): void {
  try {
    const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (created !== undefined) chmodSync(dir, 0o700); // exactly 0700, whatever the umask
    if (!statSync(dir).isDirectory()) throw new CliError(`${dir} is not a directory`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot create ${dir} (${code ?? 'error'})`);
  }
}

/** The run of a 201 answer to `/runs/spawn`, checked. */
function spawnedRun(answer: Record<string, unknown>, url: string): RunInfo {
  const { run_id, agent_id, parent_run_id, root_run_id, lineage, scope, created_at, expires_at } =
    answer;
  if (
    typeof run_id !== 'string' ||
    !RUN_ID.test(run_id) ||
    typeof agent_id !== 'string' ||
    (parent_run_id !== null && typeof parent_run_id !== 'string') ||
    typeof root_run_id !== 'string' ||
    !isStringArray(lineage) ||
    lineage[lineage.length - 1] !== run_id ||
    !isStringArray(scope) ||
    typeof created_at !== 'string' ||
    typeof expires_at !== 'string'
  ) {
    throw new CliError('spawn failed: the answer is not a run');
  }
  return {
    run_id,
    agent_id,
    parent_run_id,
    root_run_id,
    lineage,
    scope,
    created_at,
    expires_at,
    url,
  };
}

async function runSpawn(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, [
    'url',
    'device-key-file',
    'parent-dir',
    'task',
    'scope',
    'ttl',
    'out',
  ]);
  const out = required(opts.out, 'out');
  const task = required(opts.task, 'task');
  if (/[\x00-\x1f\x7f]/.test(task)) throw usage('--task must not contain control characters');
  const scope = required(opts.scope, 'scope')
    .split(',')
    .map((s) => s.trim());
  if (scope.some((s) => s === '')) throw usage('--scope has an empty entry');
  const ttlText = opts.ttl ?? String(DEFAULT_RUN_TTL_SECONDS);
  if (!/^[1-9][0-9]{0,8}$/.test(ttlText)) throw usage('--ttl must be a whole number of seconds');
  const deviceKeyFile = opts['device-key-file'];
  const parentDir = opts['parent-dir'];
  if (deviceKeyFile !== undefined && parentDir !== undefined) {
    throw usage('give --device-key-file or --parent-dir, not both');
  }
  if (deviceKeyFile === undefined && parentDir === undefined) {
    throw usage('--device-key-file is required (or --parent-dir to spawn a child run)');
  }
  if (parentDir === undefined && opts.url === undefined) throw usage('--url is required');
  // Everything that can be refused is checked before a key is made or a file written.
  const parent = parentDir === undefined ? null : readRunDir(parentDir, '--parent-dir');
  const base = serviceUrl(opts.url ?? parent!.info.url, '--url');
  const device = deviceKeyFile === undefined ? null : readDeviceCredential(deviceKeyFile);
  makePrivateDir(out);
  const keyFile = join(out, RUN_FILES.key);
  const infoFile = join(out, RUN_FILES.info);
  refuseExisting([keyFile, infoFile], 'refusing to overwrite a run’s files (use a new --out DIR)');

  // A fresh key for every run, made here: the private half never leaves this machine.
  const keys = generateDeviceKeys();
  keys.sealing.privateKey.fill(0);
  const publicKey = encodeRawKey(keys.signing.publicKey);
  let runKey: KeyObject;
  try {
    // Written first: a run is never live on the service while its key exists only in memory.
    writePrivateFile(keyFile, `${encodeRawKey(keys.signing.privateKey)}\n`);
    runKey = ed25519PrivateKeyObject(keys.signing.privateKey);
  } finally {
    keys.signing.privateKey.fill(0);
  }

  const path = '/runs/spawn';
  const body = JSON.stringify({ task, scope, ttl_seconds: Number(ttlText), public_key: publicKey });
  let info: RunInfo;
  try {
    let headers: Record<string, string>;
    if (parent !== null) {
      headers = runHeaders(parent, path, body, io);
    } else {
      headers = { 'x-agentpack-device-key': device!.deviceKey };
      if (device!.signingKey !== null) {
        Object.assign(
          headers,
          signRequest({
            method: 'POST',
            path,
            body,
            signingSeed: device!.signingKey,
            nowMs: nowMs(io),
          }),
        );
      }
    }
    const res = await post(`${base}${path}`, headers, body, 'spawn failed', REQUEST_TIMEOUT_MS);
    info = spawnedRun(
      answerObject(res.status, res.text, 'spawn failed', (s) => s === 201),
      base,
    );
  } catch (error) {
    // No run, so no key: take the file away again.
    try {
      unlinkSync(keyFile);
    } catch {
      // already gone
    }
    throw error;
  }
  try {
    writePrivateFile(infoFile, `${JSON.stringify(info, null, 2)}\n`);
  } catch (error) {
    // Without run.json nobody can use the run: end it rather than leave it live.
    const ended = await postAsRun(
      { info, key: runKey },
      '/runs/complete',
      '{}',
      'completing the run failed',
      io,
    ).then(
      (res) => res.status === 200,
      () => false,
    );
    const message = (error as Error).message;
    throw new CliError(
      ended
        ? `${message}; run ${info.run_id} was completed again`
        : `${message}; run ${info.run_id} could not be completed: revoke it`,
    );
  }
  io.stdout(
    `${JSON.stringify({ run_id: info.run_id, lineage: info.lineage, expires_at: info.expires_at }, null, 2)}\n`,
  );
  io.stderr(`run key written to ${keyFile} (mode 0600), run details to ${infoFile}\n`);
  return 0;
}

/** The options of `run exec` before `--`: `--run-dir` once, `--ref` any number of times. */
function parseExecOptions(args: readonly string[]): { runDir: string; refs: string[] } {
  let values: { 'run-dir'?: string[]; ref?: string[] };
  try {
    values = parseArgs({
      args: [...args],
      options: {
        'run-dir': { type: 'string', multiple: true },
        ref: { type: 'string', multiple: true },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    throw usage(text.split(/\.\s/)[0]!.replace(/\.$/, ''));
  }
  const dirs = values['run-dir'] ?? [];
  if (dirs.length > 1) throw usage('--run-dir given more than once');
  return { runDir: required(dirs[0], 'run-dir'), refs: values.ref ?? [] };
}

/** `NAME=REF` pairs, checked: safe file names, each once; refs of the right form. */
function parseRefs(pairs: readonly string[]): Array<{ name: string; ref: string }> {
  const seen = new Set<string>();
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq);
    const ref = pair.slice(eq + 1);
    if (eq === -1 || !FILE_NAME.test(name)) {
      throw usage(
        '--ref must be NAME=REF with NAME made of letters, digits, "_", "." and "-", starting with a letter or digit',
      );
    }
    if (!ref.startsWith(SECRET_REF_PREFIX) || !TOKEN_TEXT.test(ref)) {
      throw usage(`--ref ${name}: the reference must be ${SECRET_REF_PREFIX}AGENT/NAME[#VERSION]`);
    }
    if (seen.has(name)) throw usage(`--ref ${name} given more than once`);
    seen.add(name);
    return { name, ref };
  });
}

/** Resolves the refs as the run, in one call; the values in the order of `refs`. */
async function resolveRefs(
  run: RunDir,
  refs: ReadonlyArray<{ name: string; ref: string }>,
  io: CliIo,
): Promise<string[]> {
  const failure = 'cannot resolve the secrets';
  const body = JSON.stringify({ refs: refs.map((r) => r.ref) });
  const res = await postAsRun(run, '/secrets/resolve', body, failure, io);
  const answer = answerObject(res.status, res.text, failure, (s) => s === 200);
  const values = answer['values'];
  if (!Array.isArray(values) || values.length !== refs.length) {
    throw new CliError(`${failure}: the answer does not have one value per reference`);
  }
  return values.map((item: unknown, index) => {
    const { ref, value } = (item ?? {}) as { ref?: unknown; value?: unknown };
    if (ref !== refs[index]!.ref || typeof value !== 'string') {
      throw new CliError(
        `${failure}: the answer's value ${index} is not that of --ref ${refs[index]!.name}`,
      );
    }
    return value;
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
  values: readonly string[],
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
      writeFileSync(file, values[index]!, { mode: 0o600, flag: 'wx' });
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

/** How the command ended, as an exit code: its own, 128+N for signal N, 126/127 for no start. */
function runCommand(
  command: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CliIo,
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
  return `cannot complete run ${run.info.run_id} (${reason}): it stays active until ${run.info.expires_at}; revoke it`;
}

async function runExec(args: readonly string[], io: CliIo): Promise<number> {
  const split = args.indexOf('--');
  if (split === -1) throw usage('the command goes after "--": run exec --run-dir DIR -- COMMAND');
  const command = args.slice(split + 1);
  if (command.length === 0 || command[0] === '') throw usage('no command after "--"');
  const opts = parseExecOptions(args.slice(0, split));
  const refs = parseRefs(opts.refs);
  const run = readRunDir(opts.runDir, '--run-dir');
  const { run_id, expires_at } = run.info;
  if (Date.parse(expires_at) <= nowMs(io)) {
    throw new CliError(`run ${run_id} expired at ${expires_at}: spawn a new one`);
  }

  let values: string[] = [];
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

  const env: NodeJS.ProcessEnv = { ...io.env };
  for (const name of WITHHELD_ENV) delete env[name];
  const dir = writeSecretsDir(io.env, refs, values);
  values = [];
  env[EXEC_ENV.secretsDir] = dir;
  env[EXEC_ENV.runId] = run_id;
  env[EXEC_ENV.runDir] = resolve(opts.runDir);

  let code = 1;
  try {
    code = await runCommand(command, env, io);
  } finally {
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

/** The `run` commands, by name, with their help. */
export const RUN_COMMANDS: Record<
  string,
  { help: string; run(args: readonly string[], io: CliIo): Promise<number> }
> = {
  spawn: { help: RUN_HELP.spawn, run: runSpawn },
  exec: { help: RUN_HELP.exec, run: runExec },
};
