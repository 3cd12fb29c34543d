/**
 * `run token`: a run token of the run in a run directory for another audience — POST
 * /runs/token as the run itself (signed with its key, as `run exec` calls), printed on stdout
 * (that is the command's job: `$(agentpack-identity run token ...)`) or written to a 0600 file
 * that a reader re-reads (replaced whole, so a refresher may run it again on the same file).
 */
import { runsTokenRequest } from '@agentpack-identity/protocol';
import { CliError, NAME, usage, type CliIo, type Command } from '../io.js';
import { parseOptions, required } from '../options.js';
import { replacePrivateFile } from '../private-files.js';
import { postAsRun, readRunDir } from '../run-dir.js';
import { answerObject } from '../service.js';
import { checked } from '../validate.js';

const HELP = `usage: ${NAME} run token --run-dir DIR --audience AUD [--out FILE] [--json]

Gets a run token of the run in DIR (written by "run spawn" or "auth exchange") for the audience
AUD: POST URL/runs/token {audience} as the run (x-agentpack-run, signed with DIR/run.key). The
token is a JWT (ES256, typ agentpack-run+jwt) with iss the service's issuer URL, sub the agent,
aud AUD, run_id, root_run_id, lineage and scope; a relying party (or a cloud's workload identity
federation) verifies it against URL/.well-known/jwks.json. It expires with the run, and an
ended or expired run gets none (exit 1).

Prints the token alone on stdout; with --out FILE, writes it to FILE instead (mode 0600,
replaced whole if it exists) and prints nothing but a note on stderr.

options:
  --run-dir DIR          the run's directory (run.json, run.key)
  --audience AUD         the token's "aud" (printable ASCII, at most 256 characters)
  --out FILE             write the token to FILE (0600) instead of stdout
  --json                 print {token, expires_at} (with --out: {file, expires_at}) as JSON
  -h, --help             this help
`;

/** A compact JWS: three base64url segments. */
const JWT_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

async function runToken(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { values: ['run-dir', 'audience', 'out'], flags: ['json'] });
  const dir = required(opts['run-dir'], 'run-dir');
  const body = checked(
    runsTokenRequest,
    { audience: required(opts.audience, 'audience') },
    '--audience',
  );
  if (opts.out === '') throw usage('--out is empty');
  const run = readRunDir(dir, '--run-dir');
  const failure = '/runs/token';
  const res = await postAsRun(run, '/runs/token', JSON.stringify(body), failure, io);
  const answer = answerObject(res.status, res.text, failure, (s) => s === 201);
  const { token, expires_at } = answer;
  if (typeof token !== 'string' || !JWT_PATTERN.test(token) || typeof expires_at !== 'string') {
    throw new CliError(`${failure}: the answer is not a run token`);
  }
  if (opts.out === undefined) {
    io.stdout(
      opts.json === true ? `${JSON.stringify({ token, expires_at }, null, 2)}\n` : `${token}\n`,
    );
    return 0;
  }
  replacePrivateFile(opts.out, `${token}\n`);
  if (opts.json === true) {
    io.stdout(`${JSON.stringify({ file: opts.out, expires_at }, null, 2)}\n`);
  } else {
    io.stderr(`run token written to ${opts.out} (mode 0600), expires at ${expires_at}\n`);
  }
  return 0;
}

export const TOKEN: Command = { help: HELP, run: runToken };
