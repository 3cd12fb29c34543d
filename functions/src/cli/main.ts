/**
 * The operator CLI, `agentpack-identity` (the package's bin): generates the Ed25519 key that
 * signs capability tokens and mints tokens with it, optionally recording each in the service's
 * token ledger, and runs maintenance on the store (`secrets rewrap`). The private key stays in
 * the operator's file; nothing here prints it, nor any secret or data key.
 *
 * Exit codes: 0 done, 1 the command failed (bad key file, refused value, registration refused),
 * 2 the command line itself is wrong (unknown command or option, missing option).
 */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { StorageConfig } from '../config/config.js';
import { generateSigningKey, mintCapabilityToken, type MintedToken } from '../tokens/mint.js';

/** Where the CLI writes, what environment it reads and what time it is: injected for tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Milliseconds since the Unix epoch; default `Date.now`. */
  now?(): number;
}

const NAME = 'agentpack-identity';
const DEFAULT_TTL_SECONDS = 300;
const MAX_KEY_FILE_BYTES = 64 * 1024;
const REGISTER_TIMEOUT_MS = 15_000;

/** A failure with a one-line reason and an exit code. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

const usage = (message: string) => new CliError(message, 2);

const HELP = {
  top: `${NAME}: operator tooling for agentpack-identity capability tokens

usage:
  ${NAME} keys generate --out FILE [--kid KID]
  ${NAME} token mint --key FILE --sub AGENT --scope RPC[,RPC...] [--ttl SECONDS]
      [--iss ISSUER] [--aud AUDIENCE] [--register URL]
  ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]

commands:
  keys generate   write a new Ed25519 signing key (private JWK, mode 0600), print its public JWK
  token mint      sign a capability token with that key and print it
  secrets rewrap  re-wrap the data keys of stored secrets under the current primary key

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
} as const;

const wantsHelp = (args: readonly string[]) => args.includes('--help') || args.includes('-h');

/** Parses a command's options strictly; each option at most once, no positionals. */
function parseOptions<K extends string>(
  args: readonly string[],
  names: readonly K[],
): Partial<Record<K, string>> {
  let values: Record<string, unknown>;
  try {
    const options = Object.fromEntries(
      names.map((n) => [n, { type: 'string' as const, multiple: true as const }]),
    );
    values = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    // parseArgs' messages go on with advice about `--`; the first sentence is the reason.
    throw usage(text.split(/\.\s/)[0]!.replace(/\.$/, ''));
  }
  const out: Partial<Record<K, string>> = {};
  for (const name of names) {
    const list = values[name] as string[] | undefined;
    if (list === undefined) continue;
    if (list.length > 1) throw usage(`--${name} given more than once`);
    out[name] = list[0]!;
  }
  return out;
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw usage(`--${name} is required`);
  return value;
}

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

const LOOPBACK_HOSTS = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

/** `URL/tokens/register`, refusing URLs that would expose the bridge key or be ambiguous. */
function registerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--register: "${raw}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CliError('--register: the URL must be http(s)');
  }
  // Policy: the bridge key travels in a header, so never in clear over a network.
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.test(url.hostname)) {
    throw new CliError('--register: plain http is allowed to loopback addresses only; use https');
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new CliError('--register: the URL must have no credentials, query or fragment');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}/tokens/register`;
}

/** A short single-line rendering of a service's error answer (it is not ours to trust). */
function describeAnswer(status: number, text: string): string {
  let detail = '';
  try {
    const body: unknown = JSON.parse(text);
    const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === 'string') detail += ` ${error.code}`;
    if (typeof error?.message === 'string') detail += `: ${error.message}`;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${status}${detail.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 200)}`;
}

async function register(url: string, key: string, minted: MintedToken): Promise<void> {
  const { jti, sub, scope, iat, exp } = minted.claims;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-agentpack-key': key },
      body: JSON.stringify({ jti, sub, scope, iat, exp, kid: minted.kid }),
      // A redirect would send the bridge key somewhere we were not told to: treat it as failure.
      redirect: 'manual',
      signal: AbortSignal.timeout(REGISTER_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const name = (error as Error).name;
    throw new CliError(
      `registration failed: cannot reach ${url} (${cause ?? (name === 'TimeoutError' ? 'timeout' : 'network error')})`,
    );
  }
  const text = await res.text().catch(() => '');
  if (res.status !== 201) {
    throw new CliError(`registration failed: ${describeAnswer(res.status, text)}`);
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
    throw usage(`unknown command "${group}" (try "${NAME} --help")`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`${NAME}: ${message.replace(/[\r\n]+/g, ' ')}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}

function help(io: CliIo, text: string): number {
  io.stdout(text);
  return 0;
}

/** The process entry, called by `bin/agentpack-identity.js`. */
export async function main(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
  });
}
