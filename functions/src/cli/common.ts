/**
 * What the CLI's commands share: the injected I/O, one-line failures with their exit codes,
 * strict option parsing, the service URL policy (https, or plain http to loopback only), the
 * one POST they all make and how its answer is read, and the private files (0600, never
 * overwritten, refused when others can read them).
 */
import { chmodSync, lstatSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Where the CLI writes, what environment it reads and what time it is: injected for tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Milliseconds since the Unix epoch; default `Date.now`. */
  now?(): number;
}

export const NAME = 'agentpack-identity';
export const REQUEST_TIMEOUT_MS = 15_000;

/** A failure with a one-line reason and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

export const usage = (message: string) => new CliError(message, 2);

/** True when the options (what comes before `--`, if any) ask for help. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  const options = end === -1 ? args : args.slice(0, end);
  return options.includes('--help') || options.includes('-h');
}

/**
 * Parses a command's options strictly; each option at most once, no positionals. `flags` are
 * options without a value, present as `true`.
 */
export function parseOptions<K extends string, F extends string = never>(
  args: readonly string[],
  names: readonly K[],
  flags: readonly F[] = [],
): Partial<Record<K, string>> & Partial<Record<F, true>> {
  let values: Record<string, unknown>;
  try {
    const options = Object.fromEntries([
      ...names.map((n) => [n, { type: 'string' as const, multiple: true as const }]),
      ...flags.map((n) => [n, { type: 'boolean' as const, multiple: true as const }]),
    ]);
    values = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    // parseArgs' messages go on with advice about `--`; the first sentence is the reason.
    throw usage(text.split(/\.\s/)[0]!.replace(/\.$/, ''));
  }
  const out: Partial<Record<string, string | true>> = {};
  for (const name of [...names, ...flags]) {
    const list = values[name] as Array<string | boolean> | undefined;
    if (list === undefined) continue;
    if (list.length > 1) throw usage(`--${name} given more than once`);
    out[name] = list[0] as string | true;
  }
  return out as Partial<Record<K, string>> & Partial<Record<F, true>>;
}

export function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw usage(`--${name} is required`);
  return value;
}

export const LOOPBACK_HOSTS = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

/**
 * The service's base URL from `option` (without a trailing slash), refusing URLs that would
 * expose a credential or be ambiguous.
 */
export function serviceUrl(raw: string, option: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`${option}: "${raw}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CliError(`${option}: the URL must be http(s)`);
  }
  // Policy: credentials (a bridge key, a device key, an enrollment code) and secrets travel in
  // the request or its answer, so never in clear over a network.
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.test(url.hostname)) {
    throw new CliError(`${option}: plain http is allowed to loopback addresses only; use https`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new CliError(`${option}: the URL must have no credentials, query or fragment`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** A short single-line rendering of a service's error answer (it is not ours to trust). */
export function describeAnswer(status: number, text: string): string {
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

/**
 * POSTs `body` to `url` and returns the status and text of the answer; `failure` starts the
 * one-line reason when the service cannot be reached.
 */
export async function post(
  url: string,
  headers: Record<string, string>,
  body: string,
  failure: string,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      // A redirect would send a credential somewhere we were not told to: treat it as failure.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const name = (error as Error).name;
    throw new CliError(
      `${failure}: cannot reach ${url} (${cause ?? (name === 'TimeoutError' ? 'timeout' : 'network error')})`,
    );
  }
  const text = await res.text().catch(() => '');
  return { status: res.status, text };
}

/** Writes a new private file (mode exactly 0600), never over an existing file or symlink. */
export function writePrivateFile(file: string, content: string): void {
  try {
    // `wx`: O_CREAT|O_EXCL, so an existing file (or a planted symlink) is never overwritten.
    writeFileSync(file, content, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600); // the umask may have taken bits away; make it exactly 0600
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CliError(`${file} already exists: refusing to overwrite it`);
    throw new CliError(`cannot write ${file} (${code ?? 'error'})`);
  }
}

/** Refuses when any of `files` exists (a symlink too), before anything is written. */
export function refuseExisting(files: readonly string[], hint: string): void {
  for (const file of files) {
    let exists = true;
    try {
      lstatSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new CliError(`cannot check ${file} (${(error as NodeJS.ErrnoException).code})`);
      }
      exists = false;
    }
    if (exists) throw new CliError(`${file} already exists: ${hint}`);
  }
}

/**
 * Reads a small private file of the device directory: a regular file, at most 4 KiB, that
 * nobody else can read (policy, as ssh does for its keys: a private key or device key others
 * can read is refused, not used). Returns its text without surrounding whitespace.
 */
export function readPrivateFile(file: string): string {
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new CliError(`${file} is not a file`);
    if (stat.size > 4096) throw new CliError(`${file} is too large`);
    const mode = stat.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new CliError(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
    }
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Printable ASCII without spaces, bounded: safe in a header, a body and a one-line error. */
export const TOKEN_TEXT = /^[\x21-\x7e]{1,512}$/;

/** The JSON object of a 2xx answer, or a one-line failure. */
export function answerObject(
  status: number,
  text: string,
  failure: string,
  ok: (status: number) => boolean,
): Record<string, unknown> {
  if (!ok(status)) throw new CliError(`${failure}: ${describeAnswer(status, text)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${failure}: HTTP ${status} with an answer that is not JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CliError(`${failure}: HTTP ${status} with an answer that is not a JSON object`);
  }
  return body as Record<string, unknown>;
}

export function help(io: CliIo, text: string): number {
  io.stdout(text);
  return 0;
}
