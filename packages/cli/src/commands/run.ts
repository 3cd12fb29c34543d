/**
 * The `run` group: ephemeral runs from the workload's side. `run spawn` generates the run's
 * Ed25519 key here — a fresh one for every run, so two runs never share a key — sends only its
 * public half to `/runs/spawn`, and writes the run's directory (new-run-dir.ts, run-dir.ts).
 * `run exec` (run-exec.ts) runs a command as that run; `run token` (run-token.ts) gets a run
 * token of it for another audience. A run without a device key comes from `auth exchange`
 * (commands/auth.ts), which writes the same directory.
 */
import { audienceField } from '@agentpack-identity/protocol';
import { NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { listOption, parseOptions, required } from '../options.js';
import { deviceHeaders, readDeviceCredential } from '../device-credential.js';
import { filesWritten, newRunDir } from '../new-run-dir.js';
import { readRunDir, runHeaders } from '../run-dir.js';
import { post, REQUEST_TIMEOUT_MS, serviceUrl } from '../service.js';
import { checked } from '../validate.js';
import { EXEC } from './run-exec.js';
import { TOKEN } from './run-token.js';

const DEFAULT_RUN_TTL_SECONDS = 300;

const HELP = {
  run: `usage: ${NAME} run spawn --url URL --device-key-file FILE --task TASK --scope RPC[,RPC...]
           [--ttl SECONDS] [--audience AUD] --out DIR
       ${NAME} run spawn --parent-dir DIR --task TASK --scope RPC[,RPC...]
           [--ttl SECONDS] [--audience AUD] --out DIR
       ${NAME} run exec --run-dir DIR [--ref NAME=REF ...] [--watch [SECONDS]
           [--reload-signal SIG]] -- COMMAND [ARGS...]
       ${NAME} run token --run-dir DIR --audience AUD [--out FILE]

A run directory is also what "${NAME} auth exchange" writes (a workload's platform token
exchanged for a run, no device key).

Run "${NAME} run COMMAND --help" for a command's options.
`,
  spawn: `usage: ${NAME} run spawn --url URL --device-key-file FILE --task TASK
    --scope RPC[,RPC...] [--ttl SECONDS] [--audience AUD] --out DIR
       ${NAME} run spawn --parent-dir DIR [--url URL] --task TASK
    --scope RPC[,RPC...] [--ttl SECONDS] [--audience AUD] --out DIR

Spawns an ephemeral run: an identity of the agent for one task, with its own Ed25519 key. The
key is generated here, a fresh one every time, and only its public half is sent: POST
URL/runs/spawn with {task, scope, ttl_seconds, public_key[, audience]}, authenticated with the
agent's device key from FILE (x-agentpack-device-key; when FILE is the device-key of a "device
enroll" directory, the request is also signed with that directory's signing.key), or with
--parent-dir as the run in that directory (x-agentpack-run, signed with its run.key): a child
run, within its parent's scope and life.

Creates DIR (mode 0700) if it does not exist and writes, each mode 0600 and never over an
existing file:
  DIR/run.key    the run's Ed25519 private key (its 32-byte seed, base64url)
  DIR/run.token  the run token the service answered with: a JWT (ES256) that says which run
                 of which agent this is, for the audience --audience (default: the
                 service's issuer URL), verifiable against URL/.well-known/jwks.json; expires
                 with the run
  DIR/run.json   {run_id, agent_id, parent_run_id, root_run_id, lineage, scope, created_at,
                 expires_at, url}
Prints run_id, lineage and expires_at (never the key or the token). Hand DIR to the workload,
e.g. "${NAME} run exec --run-dir DIR -- COMMAND"; "${NAME} run token" gets tokens for other
audiences.

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
  --audience AUD          the "aud" of the run token in DIR/run.token (printable ASCII, at
                          most 256 characters; default: the service's issuer URL)
  --out DIR               where to write the run's files
  -h, --help              this help
`,
} as const;

async function runSpawn(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: ['url', 'device-key-file', 'parent-dir', 'task', 'scope', 'ttl', 'out', 'audience'],
  });
  const out = required(opts.out, 'out');
  const task = required(opts.task, 'task');
  if (/[\x00-\x1f\x7f]/.test(task)) throw usage('--task must not contain control characters');
  const scope = listOption(required(opts.scope, 'scope'), 'scope');
  const ttlText = opts.ttl ?? String(DEFAULT_RUN_TTL_SECONDS);
  if (!/^[1-9][0-9]{0,8}$/.test(ttlText)) throw usage('--ttl must be a whole number of seconds');
  const audience =
    opts.audience === undefined ? undefined : checked(audienceField, opts.audience, '--audience');
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
  const path = '/runs/spawn';
  const made = await newRunDir(
    out,
    base,
    'spawn failed',
    (publicKey) => {
      const body = JSON.stringify({
        task,
        scope,
        ttl_seconds: Number(ttlText),
        public_key: publicKey,
        ...(audience === undefined ? {} : { audience }),
      });
      const headers =
        parent !== null
          ? runHeaders(parent, path, body, io)
          : deviceHeaders(device!, path, body, io);
      return post(`${base}${path}`, headers, body, 'spawn failed', REQUEST_TIMEOUT_MS);
    },
    io,
  );
  const info = made.info;
  io.stdout(
    `${JSON.stringify({ run_id: info.run_id, lineage: info.lineage, expires_at: info.expires_at }, null, 2)}\n`,
  );
  io.stderr(filesWritten(made));
  return 0;
}

export const RUN: CommandGroup = {
  help: HELP.run,
  hint: 'run --help',
  commands: { spawn: { help: HELP.spawn, run: runSpawn }, exec: EXEC, token: TOKEN },
};
