/**
 * The `run` group: ephemeral runs from the workload's side. `run spawn` generates the run's
 * Ed25519 key here — a fresh one for every run, so two runs never share a key — sends only its
 * public half to `/runs/spawn`, and writes the run's directory (run-dir.ts). `run exec`
 * (run-exec.ts) runs a command as that run.
 */
import type { KeyObject } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  ed25519PrivateKeyObject,
  encodeRawKey,
  generateDeviceKeys,
  RUN_FILES,
} from '@agentpack-identity/protocol';
import { CliError, NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { listOption, parseOptions, required } from '../options.js';
import { makePrivateDir, refuseExisting, writePrivateFile } from '../private-files.js';
import { deviceHeaders, readDeviceCredential } from '../device-credential.js';
import { postAsRun, readRunDir, runHeaders, spawnedRun, type RunInfo } from '../run-dir.js';
import { answerObject, post, REQUEST_TIMEOUT_MS, serviceUrl } from '../service.js';
import { EXEC } from './run-exec.js';

const DEFAULT_RUN_TTL_SECONDS = 300;

const HELP = {
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
} as const;

async function runSpawn(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: ['url', 'device-key-file', 'parent-dir', 'task', 'scope', 'ttl', 'out'],
  });
  const out = required(opts.out, 'out');
  const task = required(opts.task, 'task');
  if (/[\x00-\x1f\x7f]/.test(task)) throw usage('--task must not contain control characters');
  const scope = listOption(required(opts.scope, 'scope'), 'scope');
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
      headers = deviceHeaders(device!, path, body, io);
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

export const RUN: CommandGroup = {
  help: HELP.run,
  hint: 'run --help',
  commands: { spawn: { help: HELP.spawn, run: runSpawn }, exec: EXEC },
};
