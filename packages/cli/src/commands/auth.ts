/**
 * The `auth` group: `auth exchange`, the login of a workload that holds no static credential —
 * its platform's token (a Kubernetes projected service-account token, a GitHub Actions OIDC
 * token, a Google identity token) is exchanged at `/auth/exchange` for a root run of the role's
 * agent. The run's key is generated here and the run directory written exactly as `run spawn`
 * writes it (new-run-dir.ts), so `run exec --run-dir DIR` and `run token --run-dir DIR` work
 * on it.
 *
 * Policy: the subject token is a credential (whoever holds it is the workload until it
 * expires), so it is read from a file or stdin only — never argv, where other users see it in
 * `ps` — and it is never printed, written anywhere or repeated in a message.
 */
import { readFileSync, statSync } from 'node:fs';
import {
  audienceField,
  authExchangeRequest,
  roleField,
  taskField,
} from '@agentpack-identity/protocol';
import { CliError, NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions, required } from '../options.js';
import { filesWritten, newRunDir } from '../new-run-dir.js';
import { describeAnswer, post, REQUEST_TIMEOUT_MS, serviceUrl } from '../service.js';
import { checked } from '../validate.js';

/** The service takes a subject token of at most 16 KiB; a file a little larger is refused. */
const MAX_SUBJECT_TOKEN_BYTES = 16 * 1024;
const READ_LIMIT_BYTES = MAX_SUBJECT_TOKEN_BYTES + 1024;

/** A compact JWS: three base64url segments. */
const JWT_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const REFUSED_SUBJECT_TOKEN = {
  'subject-token':
    'a token in the command line is visible to other users (ps); use --subject-token-file FILE (or - for stdin)',
} as const;

const HELP = {
  group: `usage: ${NAME} auth exchange --url URL --role ROLE --subject-token-file FILE --out DIR
           [--task TASK] [--ttl SECONDS] [--audience AUD]

Run "${NAME} auth COMMAND --help" for a command's options.
`,
  exchange: `usage: ${NAME} auth exchange --url URL --role ROLE --subject-token-file FILE --out DIR
    [--task TASK] [--ttl SECONDS] [--audience AUD]

Logs a workload in without a static credential: its platform's token (the subject token: a
Kubernetes projected service-account token, a GitHub Actions OIDC token, a Google identity
token, ...) is exchanged for a root run of the role's agent. The run's Ed25519 key is
generated here, a fresh one every time, and only its public half is sent: POST
URL/auth/exchange with {role, subject_token, public_key[, task, ttl_seconds, audience]} and no
other credential. The service checks the token against the role ("${NAME} roles get ROLE"):
signed by its issuer, its audience, unexpired, its bound claims. A refusal is exit 1 with the
service's reason (unknown_role, untrusted_issuer, bad_signature, expired, wrong_audience,
claim_mismatch, agent_disabled).

Writes DIR as "${NAME} run spawn" does (DIR mode 0700 if new; each file 0600, never over an
existing one):
  DIR/run.key    the run's Ed25519 private key
  DIR/run.token  the run token (a JWT for --audience, default the service's issuer URL)
  DIR/run.json   the run: {run_id, agent_id, lineage, scope, expires_at, url, ...}
Then "${NAME} run exec --run-dir DIR -- COMMAND" runs a command as the run, and
"${NAME} run token --run-dir DIR --audience AUD" gets tokens for other audiences.
Prints run_id, agent_id, scope, lineage and expires_at; never the subject token, the key or
the run token.

options:
  --url URL              the service's base URL (default: $AGENTPACK_URL); plain http only
                         to loopback addresses
  --role ROLE            the role to exchange the token under
  --subject-token-file FILE
                         the subject token: a file (e.g. a projected service-account token's
                         path) or "-" for stdin (typed without echo on a terminal). Never
                         from the command line: --subject-token is refused
  --out DIR              where to write the run's files
  --task TASK            what the run is for (audited; default: exchange:ROLE)
  --ttl SECONDS          the run's life (default and most: the role's ttl, and never past the
                         subject token's expiry)
  --audience AUD         the "aud" of the run token in DIR/run.token
  -h, --help             this help
`,
} as const;

/** The subject token from `file` (or stdin for `-`), trimmed; checked as a JWT, never echoed. */
async function readSubjectToken(file: string, io: CliIo): Promise<string> {
  let bytes: Buffer;
  if (file !== '-') {
    try {
      const stat = statSync(file);
      if (!stat.isFile()) throw new CliError(`--subject-token-file: ${file} is not a file`);
      if (stat.size > READ_LIMIT_BYTES) {
        throw new CliError(`--subject-token-file: ${file} is too large for a token`);
      }
      bytes = readFileSync(file);
    } catch (error) {
      if (error instanceof CliError) throw error;
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new CliError(`--subject-token-file: cannot read ${file} (${code})`);
    }
  } else if (io.tty?.stdin === true) {
    if (io.readHidden === undefined) throw usage('pipe the subject token on stdin');
    bytes = Buffer.from(await io.readHidden('subject token (not echoed): '), 'utf8');
  } else {
    if (io.readStdin === undefined) throw usage('no stdin: use --subject-token-file FILE');
    bytes = await io.readStdin(READ_LIMIT_BYTES);
  }
  const where = file === '-' ? 'stdin' : file;
  const token = bytes.toString('latin1').trim();
  bytes.fill(0);
  if (token === '') throw new CliError(`--subject-token-file: ${where} is empty`);
  if (token.length > MAX_SUBJECT_TOKEN_BYTES || !JWT_PATTERN.test(token)) {
    throw new CliError(`--subject-token-file: ${where} does not hold a JWT`);
  }
  return token;
}

/** The service's URL: --url, else $AGENTPACK_URL (a workload has no operator profile). */
function exchangeUrl(flag: string | undefined, io: CliIo): string {
  if (flag !== undefined) return serviceUrl(flag, '--url');
  const env = io.env['AGENTPACK_URL'];
  if (env !== undefined && env !== '') return serviceUrl(env, 'AGENTPACK_URL');
  throw usage('--url is required (or set AGENTPACK_URL)');
}

/**
 * The one-line reason of a refused exchange: the status, code and message, and the 401's
 * `details.reason` (and the claim it concerns), which say what to fix on which side.
 */
function refusal(status: number, text: string): string {
  let extra = '';
  try {
    const details = (JSON.parse(text) as { error?: { details?: Record<string, unknown> } }).error
      ?.details;
    const reason = details?.['reason'];
    const claim = details?.['claim'];
    if (typeof reason === 'string' && /^[a-z_]{1,40}$/.test(reason)) {
      extra = ` (reason: ${reason}`;
      if (typeof claim === 'string' && /^[\x21-\x7e]{1,64}$/.test(claim))
        extra += `, claim ${claim}`;
      extra += ')';
    }
  } catch {
    // not JSON: the status says enough
  }
  return `exchange failed: ${describeAnswer(status, text)}${extra}`;
}

async function authExchange(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: ['url', 'role', 'subject-token-file', 'out', 'task', 'ttl', 'audience'],
    refused: REFUSED_SUBJECT_TOKEN,
    quiet: true,
  });
  // Everything that can be refused is checked before the token is read or a key made.
  const out = required(opts.out, 'out');
  const role = checked(roleField, required(opts.role, 'role'), '--role');
  const file = required(opts['subject-token-file'], 'subject-token-file');
  const task = opts.task === undefined ? undefined : checked(taskField, opts.task, '--task');
  if (opts.ttl !== undefined && !/^[1-9][0-9]{0,8}$/.test(opts.ttl)) {
    throw usage('--ttl must be a whole number of seconds');
  }
  const audience =
    opts.audience === undefined ? undefined : checked(audienceField, opts.audience, '--audience');
  const base = exchangeUrl(opts.url, io);
  const subjectToken = await readSubjectToken(file, io);

  const path = '/auth/exchange';
  const made = await newRunDir(
    out,
    base,
    'exchange failed',
    async (publicKey) => {
      const body = checked(
        authExchangeRequest,
        {
          role,
          subject_token: subjectToken,
          public_key: publicKey,
          ...(task === undefined ? {} : { task }),
          ...(opts.ttl === undefined ? {} : { ttl_seconds: Number(opts.ttl) }),
          ...(audience === undefined ? {} : { audience }),
        },
        'auth exchange',
      );
      // No credential header: the subject token in the body is the credential.
      const res = await post(
        `${base}${path}`,
        {},
        JSON.stringify(body),
        'exchange failed',
        REQUEST_TIMEOUT_MS,
      );
      // A refusal never repeats the token, but a message is made safe whatever it says.
      if (res.status !== 201) {
        throw new CliError(refusal(res.status, res.text).split(subjectToken).join('[redacted]'));
      }
      return res;
    },
    io,
  );
  const { info } = made;
  io.stdout(
    `${JSON.stringify(
      {
        run_id: info.run_id,
        agent_id: info.agent_id,
        scope: info.scope,
        lineage: info.lineage,
        expires_at: info.expires_at,
      },
      null,
      2,
    )}\n`,
  );
  io.stderr(filesWritten(made));
  return 0;
}

export const AUTH: CommandGroup = {
  help: HELP.group,
  hint: 'auth --help',
  commands: { exchange: { help: HELP.exchange, run: authExchange } },
};
