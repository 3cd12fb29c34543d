/**
 * The operator CLI, `agentpack-identity` (the package's bin): generates the Ed25519 key that
 * signs capability tokens and mints tokens with it, optionally recording each in the service's
 * token ledger, and runs maintenance on the store (`secrets rewrap`). The private key stays in
 * the operator's file; nothing here prints it, nor any secret or data key.
 *
 * On an installed agent's machine, the `device` commands make and use an enrolled device: its
 * two private keys (X25519 to open sealed secrets, Ed25519 to sign requests and attestations)
 * and the device key it receives at enrollment live in one 0700 directory, each file 0600, and
 * are never printed. Only `device request` prints a secret, when that is what it was asked for.
 *
 * For a workload, the `run` commands (run-commands.ts) spawn an ephemeral run with a key made
 * here and run a command as that run, its secrets in private files rather than its environment.
 *
 * Exit codes: 0 done, 1 the command failed (bad key file, refused value, registration refused),
 * 2 the command line itself is wrong (unknown command or option, missing option); `run exec`
 * exits with its command's code.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isWellFormedDeviceKey } from '../auth/device-key-format.js';
import type { StorageConfig } from '../config/config.js';
import {
  decodeRawKey,
  deviceFingerprint,
  ed25519PrivateKeyObject,
  encodeRawKey,
  generateDeviceKeys,
  sealingPublicKeyOf,
  signAttestation,
  signingPublicKeyOf,
  signRequest,
  type AttestationFields,
} from '../crypto/device-keys-format.js';
import { openSealed } from '../crypto/sealed-box.js';
import { generateSigningKey, mintCapabilityToken, type MintedToken } from '../tokens/mint.js';
import {
  answerObject,
  CliError,
  describeAnswer,
  help,
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
  wantsHelp,
  writePrivateFile,
  type CliIo,
} from './common.js';
import { RUN_COMMANDS, RUN_HELP } from './run-commands.js';

export type { CliIo } from './common.js';

const DEFAULT_TTL_SECONDS = 300;
const MAX_KEY_FILE_BYTES = 64 * 1024;
const REGISTER_TIMEOUT_MS = 15_000;

/** The files of a device directory (`device keygen --out DIR`, `--keys DIR`). */
const DEVICE_FILES = {
  sealingKey: 'sealing.key',
  signingKey: 'signing.key',
  publicKeys: 'device.json',
  deviceKey: 'device-key',
  enrollment: 'enrollment.json',
} as const;

const HELP = {
  top: `${NAME}: operator and device tooling for agentpack-identity

usage:
  ${NAME} keys generate --out FILE [--kid KID]
  ${NAME} token mint --key FILE --sub AGENT --scope RPC[,RPC...] [--ttl SECONDS]
      [--iss ISSUER] [--aud AUDIENCE] [--register URL]
  ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]
  ${NAME} device keygen --out DIR
  ${NAME} device enroll --url URL --code CODE --keys DIR [--label LABEL]
  ${NAME} device request --url URL --keys DIR --path PATH [--body JSON] [--delegation ID]
      [--seal]
  ${NAME} device sign-attestation --keys DIR --job-id ID --input-sha256 H --output-sha256 H
      --rc N
  ${NAME} run spawn --url URL --device-key-file FILE --task TASK --scope RPC[,RPC...]
      [--ttl SECONDS] --out DIR [--parent-dir DIR]
  ${NAME} run exec --run-dir DIR [--ref NAME=REF ...] -- COMMAND [ARGS...]

commands:
  keys generate            write a new Ed25519 signing key (private JWK, mode 0600), print its
                           public JWK
  token mint               sign a capability token with that key and print it
  secrets rewrap           re-wrap the data keys of stored secrets under the current primary key
  device keygen            make a device's two private keys, print its public keys and
                           fingerprint
  device enroll            enroll the device with a one-time code, store its device key
  device request           send a request signed by the device, open sealed secrets
  device sign-attestation  sign a job attestation with the device's signing key
  run spawn                spawn an ephemeral run with a fresh key, write its directory
  run exec                 run a command as a run, its secrets in private files, then
                           complete the run

Run "${NAME} COMMAND --help" for a command's options.
Exit codes: 0 done, 1 the command failed, 2 bad command line.
`,
  keys: `usage: ${NAME} keys generate --out FILE [--kid KID]

Run "${NAME} keys generate --help" for details.
`,
  keysGenerate: `usage: ${NAME} keys generate --out FILE [--kid KID]

Generates an Ed25519 key that signs capability tokens. Writes the private JWK to FILE (mode
0600; an existing file is never overwritten) and prints the public JWK on stdout. Pin the public
JWK in the service's AGENTPACK_CAPABILITY_KEYS ({"keys": [<public JWK>, ...]}); keep FILE with
the operator: it must never enter the deployment.

options:
  --out FILE   where to write the private key (required)
  --kid KID    the key id (default: the RFC 7638 thumbprint of the public key)
  -h, --help   this help
`,
  token: `usage: ${NAME} token mint --key FILE --sub AGENT --scope RPC[,RPC...] [options]

Run "${NAME} token mint --help" for details.
`,
  tokenMint: `usage: ${NAME} token mint --key FILE --sub AGENT --scope RPC[,RPC...] [--ttl SECONDS]
    [--iss ISSUER] [--aud AUDIENCE] [--register URL]

Signs a capability token for one agent and prints it on stdout (a bearer credential: hand it to
the agent only).

options:
  --key FILE       the private JWK written by "keys generate" (must not be readable by others)
  --sub AGENT      the agent id the token acts for
  --scope LIST     comma-separated RPCs, each optionally narrowed to one resource,
                   e.g. secrets/get:openai_key,secrets/list
  --ttl SECONDS    lifetime (default ${DEFAULT_TTL_SECONDS}; the service refuses more than its
                   AGENTPACK_CAPABILITY_MAX_TTL_SECONDS, default 900)
  --iss ISSUER     default: $AGENTPACK_ISSUER, else agentpack-identity
  --aud AUDIENCE   default: $AGENTPACK_AUDIENCE, else agentpack
  --register URL   first record the token in the service's ledger: POST URL/tokens/register
                   with {jti, sub, scope, iat, exp, kid} (never the token), authenticated with
                   the bridge key from $AGENTPACK_BRIDGE_KEY (or the first of
                   $AGENTPACK_BRIDGE_KEYS). The token is printed only once the service answers
                   201. Plain http is allowed to loopback addresses only.
  -h, --help       this help
`,
  secrets: `usage: ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]

Run "${NAME} secrets rewrap --help" for details.
`,
  secretsRewrap: `usage: ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]

Re-wraps the data key of every stored secret version that is not under the current primary
key-encryption key (after a Cloud KMS key rotation), without touching the encrypted values.
Each rewrap is audited. Safe to run twice (the second run rewraps nothing) and resumable.
Opens the same store and keyring as the server from the environment: AGENTPACK_STORE (default
sqlite), AGENTPACK_DATA_DIR, AGENTPACK_KMS_KEY (+ AGENTPACK_KMS_ENDPOINT, AGENTPACK_KMS_INSECURE)
or AGENTPACK_SECRETS_KEK or the data dir's key file. No bridge key is needed. With Cloud KMS,
the credentials also need cloudkms.cryptoKeys.get on the key (to read its primary version).

Prints one line of JSON: {"scanned", "rewrapped", "skipped", "last_id"}. If it stops on an
error, it prints how far it got the same way, the reason on stderr, and exits 1: run it again
with --after LAST_ID to resume (or without, to start over: done versions are skipped).

options:
  --data-dir DIR   the embedded store's directory (default: $AGENTPACK_DATA_DIR, else ./.data)
  --batch N        versions read per batch (default 100, at most 1000)
  --after ID       resume after this version id (a previous run's last_id)
  -h, --help       this help
`,
  device: `usage: ${NAME} device keygen --out DIR
       ${NAME} device enroll --url URL --code CODE --keys DIR [--label LABEL]
       ${NAME} device request --url URL --keys DIR --path PATH [--body JSON]
           [--delegation ID] [--seal]
       ${NAME} device sign-attestation --keys DIR --job-id ID --input-sha256 H
           --output-sha256 H --rc N

Run "${NAME} device COMMAND --help" for a command's options.
`,
  deviceKeygen: `usage: ${NAME} device keygen --out DIR

Makes an enrolled device's keys: an X25519 key that secrets are sealed to and an Ed25519 key
that signs its requests and attestations. Creates DIR (mode 0700) if it does not exist and
writes, each mode 0600 and never over an existing file:
  DIR/sealing.key   the X25519 private key (raw 32 bytes, base64url)
  DIR/signing.key   the Ed25519 private key (its 32-byte seed, base64url)
  DIR/device.json   {sealing_public_key, signing_public_key, fingerprint}
Prints the public keys and the fingerprint (never a private key). Read the fingerprint to the
operator out of band: it goes into /device/enrollments/create as expected_fingerprint.

options:
  --out DIR    the device directory (required)
  -h, --help   this help
`,
  deviceEnroll: `usage: ${NAME} device enroll --url URL --code CODE --keys DIR [--label LABEL]

Enrolls the device whose keys are in DIR with a one-time enrollment code: POST URL/device/enroll
with {code, sealing_public_key, signing_public_key, label?}. The service pins both public keys
and answers with a device key, which is written to DIR/device-key (mode 0600; never printed),
with DIR/enrollment.json {key_id, agent_id, fingerprint, created_at, expires_at}. Prints
key_id, agent_id and fingerprint. If the service answers with another fingerprint than this
device's, nothing is written and the command fails: someone changed the keys on the way.
A device that already has DIR/device-key is not enrolled again (move the file away first).

options:
  --url URL       the service's base URL; plain http only to loopback addresses
  --code CODE     the one-time code from /device/enrollments/create
  --keys DIR      the directory written by "device keygen"
  --label LABEL   a label for the device key
  -h, --help      this help
`,
  deviceRequest: `usage: ${NAME} device request --url URL --keys DIR --path PATH [--body JSON]
    [--delegation ID] [--seal]

Sends POST URL/PATH with the device key from DIR/device-key, signed with DIR/signing.key
(x-agentpack-timestamp, x-agentpack-nonce, x-agentpack-signature over the route path PATH),
and prints the answer's JSON. With --seal, adds "seal": true to the body and opens each sealed
value of the answer (/secrets/get, /secrets/resolve) with DIR/sealing.key, so the output shows
"value" where the service sent "sealed". This prints secrets: that is its job.

options:
  --url URL          the service's base URL; plain http only to loopback addresses
  --keys DIR         the directory written by "device keygen" and "device enroll"
  --path PATH        the route, e.g. /secrets/get
  --body JSON        the request body, a JSON object (default {})
  --delegation ID    act for another agent under this delegation (x-agentpack-delegation)
  --seal             ask for sealed values and open them
  -h, --help         this help
`,
  deviceSignAttestation: `usage: ${NAME} device sign-attestation --keys DIR --job-id ID --input-sha256 H
    --output-sha256 H --rc N

Signs the attestation "agentpack-attestation-v1\n<job_id>\n<input_sha256>\n<output_sha256>\n<rc>"
with DIR/signing.key and prints the signature (base64url), as /attestations/verify takes it.

options:
  --keys DIR            the directory written by "device keygen"
  --job-id ID           the job's id
  --input-sha256 H      the digest of the job's input
  --output-sha256 H     the digest of the job's output
  --rc N                the job's exit code (an integer; a negative one as --rc=-1)
  -h, --help            this help
`,
} as const;

function keysGenerate(args: readonly string[], io: CliIo): number {
  const opts = parseOptions(args, ['out', 'kid']);
  const out = required(opts.out, 'out');
  let pair;
  try {
    pair = generateSigningKey(opts.kid);
  } catch (error) {
    throw new CliError(`--kid: ${(error as Error).message}`);
  }
  try {
    // `wx`: O_CREAT|O_EXCL, so an existing file (or a planted symlink) is never overwritten.
    writeFileSync(out, `${JSON.stringify(pair.privateJwk, null, 2)}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    chmodSync(out, 0o600); // the umask may have taken bits away; make it exactly 0600
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CliError(`${out} already exists: refusing to overwrite it`);
    throw new CliError(`cannot write ${out} (${code ?? 'error'})`);
  }
  io.stdout(`${JSON.stringify(pair.publicJwk, null, 2)}\n`);
  io.stderr(
    `private key written to ${out} (mode 0600); pin the public JWK above in AGENTPACK_CAPABILITY_KEYS\n`,
  );
  return 0;
}

function readKeyFile(file: string): unknown {
  let text: string;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new CliError(`${file} is not a file`);
    if (stat.size > MAX_KEY_FILE_BYTES) throw new CliError(`${file} is too large for a JWK`);
    // Policy, as ssh does: a signing key others can read is refused, not used.
    const mode = stat.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new CliError(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
    }
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    // Never echo the file: it holds a private key.
    throw new CliError(`${file} is not a JSON private key (JWK)`);
  }
}

/** The bridge key for `--register`: `AGENTPACK_BRIDGE_KEY`, else the first of the list. */
function bridgeKey(env: CliIo['env']): string {
  const single = env['AGENTPACK_BRIDGE_KEY']?.trim();
  if (single) return single;
  const first = (env['AGENTPACK_BRIDGE_KEYS'] ?? '')
    .split(',')
    .map((k) => k.trim())
    .find((k) => k.length > 0);
  if (first === undefined) {
    throw new CliError('--register needs the bridge key in AGENTPACK_BRIDGE_KEY');
  }
  return first;
}

/** `URL/tokens/register`, refusing URLs that would expose the bridge key or be ambiguous. */
function registerUrl(raw: string): string {
  return `${serviceUrl(raw, '--register')}/tokens/register`;
}

async function register(url: string, key: string, minted: MintedToken): Promise<void> {
  const { jti, sub, scope, iat, exp } = minted.claims;
  const res = await post(
    url,
    { 'x-agentpack-key': key },
    JSON.stringify({ jti, sub, scope, iat, exp, kid: minted.kid }),
    'registration failed',
    REGISTER_TIMEOUT_MS,
  );
  if (res.status !== 201) {
    throw new CliError(`registration failed: ${describeAnswer(res.status, res.text)}`);
  }
}

async function tokenMint(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, ['key', 'sub', 'scope', 'ttl', 'iss', 'aud', 'register']);
  const keyFile = required(opts.key, 'key');
  const sub = required(opts.sub, 'sub');
  const scope = required(opts.scope, 'scope')
    .split(',')
    .map((s) => s.trim());
  if (scope.some((s) => s === '')) throw usage('--scope has an empty entry');
  const ttlText = opts.ttl ?? String(DEFAULT_TTL_SECONDS);
  if (!/^[0-9]{1,9}$/.test(ttlText)) throw usage('--ttl must be a whole number of seconds');
  const issuer = opts.iss ?? io.env['AGENTPACK_ISSUER'] ?? 'agentpack-identity';
  const audience = opts.aud ?? io.env['AGENTPACK_AUDIENCE'] ?? 'agentpack';
  // Check everything about registration before signing anything.
  const target =
    opts.register === undefined
      ? null
      : { url: registerUrl(opts.register), key: bridgeKey(io.env) };
  const privateJwk = readKeyFile(keyFile);
  let minted: MintedToken;
  try {
    minted = mintCapabilityToken({
      privateJwk,
      sub,
      scope,
      ttlSeconds: Number(ttlText),
      issuer,
      audience,
      nowMs: io.now?.() ?? Date.now(),
    });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  if (target !== null) await register(target.url, target.key, minted);
  io.stdout(`${minted.token}\n`);
  return 0;
}

async function secretsRewrap(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, ['data-dir', 'batch', 'after']);
  const batchText = opts.batch ?? '100';
  if (!/^[0-9]{1,4}$/.test(batchText) || Number(batchText) < 1 || Number(batchText) > 1000) {
    throw usage('--batch must be a whole number from 1 to 1000');
  }
  if (opts.after === '') throw usage('--after is empty');
  // Loaded here, not at the top: the token commands need none of the store or keyring code.
  const { loadStorageConfig } = await import('../config/config.js');
  const { openKeyring, openStore, sqliteFile } = await import('../app.js');
  const { rewrapSecrets, RewrapStopped } = await import('../core/rewrap.js');
  const { systemClock } = await import('../ports/clock.js');
  const env =
    opts['data-dir'] === undefined ? io.env : { ...io.env, AGENTPACK_DATA_DIR: opts['data-dir'] };
  let config: StorageConfig;
  try {
    config = loadStorageConfig(env, { store: 'sqlite' });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  // Policy: maintenance never creates a store (or its key file) where none was: a mistyped
  // directory must fail, not report an empty success.
  if (config.store === 'sqlite' && !existsSync(sqliteFile(config.dataDir))) {
    throw new CliError(`no store in ${config.dataDir} (${sqliteFile(config.dataDir)} is missing)`);
  }
  const store = await openStore(config);
  try {
    const keyring = await openKeyring(config, store);
    try {
      const summary = await rewrapSecrets({
        store,
        keyring,
        clock: io.now === undefined ? systemClock : { now: io.now },
        batchSize: Number(batchText),
        after: opts.after ?? null,
      });
      io.stdout(`${JSON.stringify(summary)}\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof RewrapStopped)) throw error;
      io.stdout(`${JSON.stringify(error.summary)}\n`);
      const resume =
        error.summary.last_id === null ? '' : `; resume with --after ${error.summary.last_id}`;
      throw new CliError(`${error.message}${resume}`);
    } finally {
      await keyring.close();
    }
  } finally {
    await store.close();
  }
}

/** A raw 32-byte private key file (`sealing.key`, `signing.key`). Never echoes the file. */
function readRawPrivateKey(dir: string, name: string): Uint8Array {
  const file = join(dir, name);
  const raw = decodeRawKey(readPrivateFile(file));
  if (raw === null) throw new CliError(`${file} is not a raw 32-byte key in base64url`);
  return raw;
}

/** The device's private keys and what follows from them. */
interface DeviceKeyFiles {
  sealingPrivate: Uint8Array;
  sealingPublic: Uint8Array;
  signingSeed: Uint8Array;
  signingPublic: Uint8Array;
  fingerprint: string;
}

function readDeviceKeyFiles(dir: string): DeviceKeyFiles {
  const sealingPrivate = readRawPrivateKey(dir, DEVICE_FILES.sealingKey);
  const signingSeed = readRawPrivateKey(dir, DEVICE_FILES.signingKey);
  const sealingPublic = sealingPublicKeyOf(sealingPrivate);
  const signingPublic = signingPublicKeyOf(signingSeed);
  return {
    sealingPrivate,
    sealingPublic,
    signingSeed,
    signingPublic,
    fingerprint: deviceFingerprint(sealingPublic, signingPublic),
  };
}

function deviceKeygen(args: readonly string[], io: CliIo): number {
  const opts = parseOptions(args, ['out']);
  const dir = required(opts.out, 'out');
  try {
    const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (created !== undefined) chmodSync(dir, 0o700); // exactly 0700, whatever the umask
    if (!statSync(dir).isDirectory()) throw new CliError(`${dir} is not a directory`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot create ${dir} (${code ?? 'error'})`);
  }
  const files = [DEVICE_FILES.sealingKey, DEVICE_FILES.signingKey, DEVICE_FILES.publicKeys].map(
    (name) => join(dir, name),
  );
  refuseExisting(files, 'refusing to overwrite a device’s keys');
  const keys = generateDeviceKeys();
  const summary = {
    sealing_public_key: encodeRawKey(keys.sealing.publicKey),
    signing_public_key: encodeRawKey(keys.signing.publicKey),
    fingerprint: deviceFingerprint(keys.sealing.publicKey, keys.signing.publicKey),
  };
  try {
    writePrivateFile(files[0]!, `${encodeRawKey(keys.sealing.privateKey)}\n`);
    writePrivateFile(files[1]!, `${encodeRawKey(keys.signing.privateKey)}\n`);
  } finally {
    keys.sealing.privateKey.fill(0);
    keys.signing.privateKey.fill(0);
  }
  writePrivateFile(files[2]!, `${JSON.stringify(summary, null, 2)}\n`);
  io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  io.stderr(
    `private keys written to ${files[0]} and ${files[1]} (mode 0600); read the fingerprint out of band to the operator who creates the enrollment\n`,
  );
  return 0;
}

async function deviceEnroll(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, ['url', 'code', 'keys', 'label']);
  const base = serviceUrl(required(opts.url, 'url'), '--url');
  const code = required(opts.code, 'code');
  const dir = required(opts.keys, 'keys');
  if (!TOKEN_TEXT.test(code)) throw usage('--code is not an enrollment code');
  const deviceKeyFile = join(dir, DEVICE_FILES.deviceKey);
  const enrollmentFile = join(dir, DEVICE_FILES.enrollment);
  // Checked before the code is spent: a used code cannot be used again.
  refuseExisting(
    [deviceKeyFile, enrollmentFile],
    'this device is already enrolled (move the file away to enroll it again)',
  );
  const keys = readDeviceKeyFiles(dir);
  keys.sealingPrivate.fill(0);
  keys.signingSeed.fill(0);
  const request: Record<string, string> = {
    code,
    sealing_public_key: encodeRawKey(keys.sealingPublic),
    signing_public_key: encodeRawKey(keys.signingPublic),
  };
  if (opts.label !== undefined) request['label'] = opts.label;
  const res = await post(
    `${base}/device/enroll`,
    {},
    JSON.stringify(request),
    'enrollment failed',
    REQUEST_TIMEOUT_MS,
  );
  const answer = answerObject(res.status, res.text, 'enrollment failed', (s) => s === 201);
  const { key_id, agent_id, device_key, fingerprint, created_at, expires_at } = answer;
  if (typeof key_id !== 'string' || !TOKEN_TEXT.test(key_id) || typeof agent_id !== 'string') {
    throw new CliError('enrollment failed: the answer has no key_id or agent_id');
  }
  if (typeof device_key !== 'string' || !isWellFormedDeviceKey(device_key)) {
    throw new CliError(
      `enrollment failed: the answer has no well-formed device_key (key ${key_id})`,
    );
  }
  // Policy: the service must have pinned exactly this device's keys. A different fingerprint
  // means the keys were changed on the way: that enrollment must not be used.
  if (fingerprint !== keys.fingerprint) {
    throw new CliError(
      `the service pinned another fingerprint than this device's (${keys.fingerprint}): nothing was saved; revoke device key ${key_id}`,
    );
  }
  writePrivateFile(deviceKeyFile, `${device_key}\n`);
  const enrollment = { key_id, agent_id, fingerprint, created_at, expires_at };
  writePrivateFile(enrollmentFile, `${JSON.stringify(enrollment, null, 2)}\n`);
  io.stdout(`${JSON.stringify({ key_id, agent_id, fingerprint }, null, 2)}\n`);
  io.stderr(`device key written to ${deviceKeyFile} (mode 0600)\n`);
  return 0;
}

const RC_PATTERN = /^-?(0|[1-9][0-9]{0,9})$/;

function deviceSignAttestation(args: readonly string[], io: CliIo): number {
  const opts = parseOptions(args, ['keys', 'job-id', 'input-sha256', 'output-sha256', 'rc']);
  const dir = required(opts.keys, 'keys');
  const fields: AttestationFields = {
    job_id: required(opts['job-id'], 'job-id'),
    input_sha256: required(opts['input-sha256'], 'input-sha256'),
    output_sha256: required(opts['output-sha256'], 'output-sha256'),
    rc: 0,
  };
  const rcText = required(opts.rc, 'rc');
  if (!RC_PATTERN.test(rcText)) throw usage('--rc must be an integer');
  fields.rc = Number(rcText);
  for (const [option, value] of [
    ['--job-id', fields.job_id],
    ['--input-sha256', fields.input_sha256],
    ['--output-sha256', fields.output_sha256],
  ] as const) {
    if (/[\x00-\x1f\x7f]/.test(value)) throw usage(`${option} must not contain control characters`);
  }
  const seed = readRawPrivateKey(dir, DEVICE_FILES.signingKey);
  try {
    io.stdout(`${signAttestation(fields, seed)}\n`);
  } finally {
    seed.fill(0);
  }
  return 0;
}

/** A route path as the API names it: `/secrets/get`. */
const ROUTE_PATH = /^(\/[A-Za-z0-9._~-]+)+$/;

/** Decodes one `sealed` value of an answer with the device's sealing key. */
function openSealedValue(sealed: unknown, keys: DeviceKeyFiles): string {
  const bytes = typeof sealed === 'string' ? Buffer.from(sealed, 'base64url') : null;
  if (bytes === null || bytes.toString('base64url') !== sealed) {
    throw new CliError('the answer’s "sealed" is not base64url');
  }
  const opened = openSealed(bytes, keys.sealingPublic, keys.sealingPrivate);
  if (opened === null) {
    throw new CliError(
      'cannot open the sealed value: it was not sealed to this device’s key, or it was altered',
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(opened);
  } catch {
    throw new CliError('the sealed value is not UTF-8 text');
  } finally {
    opened.fill(0);
  }
}

/** `item` with its `sealed` member opened into `value`, in the same place. */
function withOpenedValue(item: Record<string, unknown>, keys: DeviceKeyFiles) {
  if (!Object.hasOwn(item, 'sealed')) return item;
  return Object.fromEntries(
    Object.entries(item).map(([key, value]) =>
      key === 'sealed' ? ['value', openSealedValue(value, keys)] : [key, value],
    ),
  );
}

async function deviceRequest(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, ['url', 'keys', 'path', 'body', 'delegation'], ['seal']);
  const base = serviceUrl(required(opts.url, 'url'), '--url');
  const dir = required(opts.keys, 'keys');
  const path = required(opts.path, 'path');
  if (!ROUTE_PATH.test(path)) throw usage('--path must be a route path such as /secrets/get');
  let body: unknown;
  try {
    body = JSON.parse(opts.body ?? '{}');
  } catch {
    throw usage('--body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw usage('--body must be a JSON object');
  }
  if (opts.seal === true) (body as Record<string, unknown>)['seal'] = true;
  if (opts.delegation !== undefined && !TOKEN_TEXT.test(opts.delegation)) {
    throw usage('--delegation is not a delegation id');
  }
  const deviceKeyFile = join(dir, DEVICE_FILES.deviceKey);
  if (!existsSync(deviceKeyFile)) {
    throw new CliError(`${deviceKeyFile} is missing: enroll the device first (device enroll)`);
  }
  const deviceKey = readPrivateFile(deviceKeyFile);
  if (!isWellFormedDeviceKey(deviceKey)) {
    throw new CliError(`${deviceKeyFile} does not hold a device key`);
  }
  const keys = readDeviceKeyFiles(dir);
  try {
    const text = JSON.stringify(body);
    const signingKey = ed25519PrivateKeyObject(keys.signingSeed);
    keys.signingSeed.fill(0);
    const headers: Record<string, string> = {
      'x-agentpack-device-key': deviceKey,
      ...signRequest({
        method: 'POST',
        path,
        body: text,
        signingSeed: signingKey,
        nowMs: io.now?.() ?? Date.now(),
      }),
    };
    if (opts.delegation !== undefined) headers['x-agentpack-delegation'] = opts.delegation;
    const res = await post(`${base}${path}`, headers, text, 'request failed', REQUEST_TIMEOUT_MS);
    let answer = answerObject(res.status, res.text, 'request failed', (s) => s >= 200 && s < 300);
    answer = withOpenedValue(answer, keys);
    const values = answer['values'];
    if (Array.isArray(values)) {
      answer = {
        ...answer,
        values: values.map((item: unknown) =>
          typeof item === 'object' && item !== null && !Array.isArray(item)
            ? withOpenedValue(item as Record<string, unknown>, keys)
            : item,
        ),
      };
    }
    io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    return 0;
  } finally {
    keys.sealingPrivate.fill(0);
    keys.signingSeed.fill(0);
  }
}

/** The `device` commands, by name, with their help. */
const DEVICE_COMMANDS: Record<
  string,
  { help: string; run(args: readonly string[], io: CliIo): number | Promise<number> }
> = {
  keygen: { help: HELP.deviceKeygen, run: deviceKeygen },
  enroll: { help: HELP.deviceEnroll, run: deviceEnroll },
  request: { help: HELP.deviceRequest, run: deviceRequest },
  'sign-attestation': { help: HELP.deviceSignAttestation, run: deviceSignAttestation },
};

/**
 * Runs the CLI on `argv` (the arguments after the program name) and resolves with the exit
 * code. Never throws: a failure is written to `io.stderr` as one line.
 *
 * @example
 * process.exitCode = await run(process.argv.slice(2), { stdout: ..., stderr: ..., env: process.env });
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [group, action, ...rest] = argv;
    if (group === undefined || group === 'help' || group === '--help' || group === '-h') {
      if (group === undefined) {
        io.stderr(HELP.top);
        return 2;
      }
      io.stdout(HELP.top);
      return 0;
    }
    if (group === 'keys') {
      if (action === 'generate') {
        if (wantsHelp(rest)) return help(io, HELP.keysGenerate);
        return keysGenerate(rest, io);
      }
      if (action === undefined || action === '--help' || action === '-h') {
        if (action === undefined) throw usage('keys: missing command (try "keys generate")');
        return help(io, HELP.keys);
      }
      throw usage(`keys: unknown command "${action}" (try "keys generate")`);
    }
    if (group === 'token') {
      if (action === 'mint') {
        if (wantsHelp(rest)) return help(io, HELP.tokenMint);
        return await tokenMint(rest, io);
      }
      if (action === undefined || action === '--help' || action === '-h') {
        if (action === undefined) throw usage('token: missing command (try "token mint")');
        return help(io, HELP.token);
      }
      throw usage(`token: unknown command "${action}" (try "token mint")`);
    }
    if (group === 'secrets') {
      if (action === 'rewrap') {
        if (wantsHelp(rest)) return help(io, HELP.secretsRewrap);
        return await secretsRewrap(rest, io);
      }
      if (action === undefined || action === '--help' || action === '-h') {
        if (action === undefined) throw usage('secrets: missing command (try "secrets rewrap")');
        return help(io, HELP.secrets);
      }
      throw usage(`secrets: unknown command "${action}" (try "secrets rewrap")`);
    }
    if (group === 'device') {
      const command =
        action !== undefined && Object.hasOwn(DEVICE_COMMANDS, action)
          ? DEVICE_COMMANDS[action]
          : undefined;
      if (command !== undefined) {
        if (wantsHelp(rest)) return help(io, command.help);
        return await command.run(rest, io);
      }
      if (action === undefined || action === '--help' || action === '-h') {
        if (action === undefined) throw usage('device: missing command (try "device --help")');
        return help(io, HELP.device);
      }
      throw usage(`device: unknown command "${action}" (try "device --help")`);
    }
    if (group === 'run') {
      const command =
        action !== undefined && Object.hasOwn(RUN_COMMANDS, action)
          ? RUN_COMMANDS[action]
          : undefined;
      if (command !== undefined) {
        if (wantsHelp(rest)) return help(io, command.help);
        return await command.run(rest, io);
      }
      if (action === undefined || action === '--help' || action === '-h') {
        if (action === undefined) throw usage('run: missing command (try "run --help")');
        return help(io, RUN_HELP.run);
      }
      throw usage(`run: unknown command "${action}" (try "run --help")`);
    }
    throw usage(`unknown command "${group}" (try "${NAME} --help")`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`${NAME}: ${message.replace(/[\r\n]+/g, ' ')}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}

/** The process entry, called by `bin/agentpack-identity.js`. */
export async function main(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
  });
}
