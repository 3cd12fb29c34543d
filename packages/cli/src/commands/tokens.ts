/**
 * The `keys` and `token` groups: the Ed25519 key that signs capability tokens, generated into
 * the operator's private file (it never enters the deployment, which pins only its public
 * half), and tokens minted with it — optionally recorded first in the service's token ledger.
 * Nothing here prints the private key.
 */
import {
  generateSigningKey,
  mintCapabilityToken,
  type MintedToken,
  CREDENTIAL_HEADERS,
} from '@agentpack-identity/protocol';
import { CliError, NAME, nowMs, usage, type CliIo, type CommandGroup } from '../io.js';
import { listOption, parseOptions, required } from '../options.js';
import { readPrivateFile, writePrivateFile } from '../private-files.js';
import { describeAnswer, post, REQUEST_TIMEOUT_MS, serviceUrl } from '../service.js';

const DEFAULT_TTL_SECONDS = 300;
const MAX_KEY_FILE_BYTES = 64 * 1024;

const HELP = {
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
                   the bridge key from $AGENTPACK_BRIDGE_KEY (or the file
                   $AGENTPACK_BRIDGE_KEY_FILE, or the first of $AGENTPACK_BRIDGE_KEYS). The
                   token is printed only once the service answers 201. Plain http is allowed
                   to loopback addresses only.
  -h, --help       this help
`,
} as const;

function keysGenerate(args: readonly string[], io: CliIo): number {
  const opts = parseOptions(args, { values: ['out', 'kid'] });
  const out = required(opts.out, 'out');
  let pair;
  try {
    pair = generateSigningKey(opts.kid);
  } catch (error) {
    throw new CliError(`--kid: ${(error as Error).message}`);
  }
  writePrivateFile(out, `${JSON.stringify(pair.privateJwk, null, 2)}\n`);
  io.stdout(`${JSON.stringify(pair.publicJwk, null, 2)}\n`);
  io.stderr(
    `private key written to ${out} (mode 0600); pin the public JWK above in AGENTPACK_CAPABILITY_KEYS\n`,
  );
  return 0;
}

/** The private JWK of `file` (0600). Never echoes the file: it holds a private key. */
function readJwkFile(file: string): unknown {
  const text = readPrivateFile(file, MAX_KEY_FILE_BYTES);
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not a JSON private key (JWK)`);
  }
}

/**
 * The bridge key for `--register`: `AGENTPACK_BRIDGE_KEY`, else the file
 * `AGENTPACK_BRIDGE_KEY_FILE`, else the first of `AGENTPACK_BRIDGE_KEYS`.
 */
function bridgeKey(env: CliIo['env']): string {
  const single = env['AGENTPACK_BRIDGE_KEY']?.trim();
  if (single) return single;
  const file = env['AGENTPACK_BRIDGE_KEY_FILE'];
  if (file) return readPrivateFile(file);
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
    { [CREDENTIAL_HEADERS.bridge]: key },
    JSON.stringify({ jti, sub, scope, iat, exp, kid: minted.kid }),
    'registration failed',
    REQUEST_TIMEOUT_MS,
  );
  if (res.status !== 201) {
    throw new CliError(`registration failed: ${describeAnswer(res.status, res.text)}`);
  }
}

async function tokenMint(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: ['key', 'sub', 'scope', 'ttl', 'iss', 'aud', 'register'],
  });
  const keyFile = required(opts.key, 'key');
  const sub = required(opts.sub, 'sub');
  const scope = listOption(required(opts.scope, 'scope'), 'scope');
  const ttlText = opts.ttl ?? String(DEFAULT_TTL_SECONDS);
  if (!/^[0-9]{1,9}$/.test(ttlText)) throw usage('--ttl must be a whole number of seconds');
  const issuer = opts.iss ?? io.env['AGENTPACK_ISSUER'] ?? 'agentpack-identity';
  const audience = opts.aud ?? io.env['AGENTPACK_AUDIENCE'] ?? 'agentpack';
  // Check everything about registration before signing anything.
  const target =
    opts.register === undefined
      ? null
      : { url: registerUrl(opts.register), key: bridgeKey(io.env) };
  const privateJwk = readJwkFile(keyFile);
  let minted: MintedToken;
  try {
    minted = mintCapabilityToken({
      privateJwk,
      sub,
      scope,
      ttlSeconds: Number(ttlText),
      issuer,
      audience,
      nowMs: nowMs(io),
    });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  if (target !== null) await register(target.url, target.key, minted);
  io.stdout(`${minted.token}\n`);
  return 0;
}

export const KEYS: CommandGroup = {
  help: HELP.keys,
  hint: 'keys generate',
  commands: { generate: { help: HELP.keysGenerate, run: keysGenerate } },
};

export const TOKEN: CommandGroup = {
  help: HELP.token,
  hint: 'token mint',
  commands: { mint: { help: HELP.tokenMint, run: tokenMint } },
};
