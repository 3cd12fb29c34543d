/**
 * The credential broker's providers: the built-in ones of the contract and those of a
 * `--broker-providers FILE`, checked (an `https://` origin only, exit 2 otherwise), and the
 * `--broker <provider>=<ref>` pairs of `run exec`.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CREDENTIAL_VALUE_PATTERN, SECRET_REF_PREFIX } from '@agentpack-identity/protocol';
import { usage } from '../io.js';

/** A provider the broker can forward to: a fixed origin, and how its SDKs are pointed at us. */
export interface Provider {
  name: string;
  /** `https://host[:port]`, no path. */
  origin: string;
  hostname: string;
  port: number;
  /** Requests are accepted only under `/<name><pathPrefix>/`. */
  pathPrefix: string;
  /** What follows `/<name>` in the base URL the command is given. */
  basePath: string;
  /** The upstream header that carries the real key (lower case), and its form. */
  authHeader: string;
  authFormat: string;
  baseUrlEnv: string[];
  keyEnv: string[];
  /** Extra trusted certificates (PEM), from `ca_file`; the default trust store otherwise. */
  ca: Buffer | null;
}

const builtin = (
  name: string,
  origin: string,
  basePath: string,
  pathPrefix: string,
  authHeader: string,
  authFormat: string,
  baseUrlEnv: string[],
  keyEnv: string[],
): Provider => ({
  name,
  origin,
  hostname: new URL(origin).hostname,
  port: 443,
  pathPrefix,
  basePath,
  authHeader,
  authFormat,
  baseUrlEnv,
  keyEnv,
  ca: null,
});

/** The built-in providers, exactly as the contract lists them. */
export const BUILTIN_PROVIDERS: Readonly<Record<string, Provider>> = {
  openai: builtin(
    'openai',
    'https://api.openai.com',
    '/v1',
    '/v1',
    'authorization',
    'Bearer {key}',
    ['OPENAI_BASE_URL'],
    ['OPENAI_API_KEY'],
  ),
  anthropic: builtin(
    'anthropic',
    'https://api.anthropic.com',
    '',
    '/v1',
    'x-api-key',
    '{key}',
    ['ANTHROPIC_BASE_URL'],
    ['ANTHROPIC_API_KEY'],
  ),
  // The Google Gen AI SDKs read GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY / GOOGLE_API_KEY.
  gemini: builtin(
    'gemini',
    'https://generativelanguage.googleapis.com',
    '',
    '/v1beta',
    'x-goog-api-key',
    '{key}',
    ['GOOGLE_GEMINI_BASE_URL'],
    ['GEMINI_API_KEY', 'GOOGLE_API_KEY'],
  ),
};

const PROVIDER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const URL_PATH = /^(\/[A-Za-z0-9._~-]+)+$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,63}$/;
/** Headers a provider may not name as its auth header: the broker owns them. */
const RESERVED_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-type',
]);
const MAX_PROVIDERS_BYTES = 256 * 1024;
const MAX_CA_BYTES = 1024 * 1024;

/** Reads a small file or throws a usage error naming `what`. */
function readSmall(file: string, max: number, what: string): Buffer {
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw usage(`${what}: ${file} is not a file`);
    if (stat.size > max) throw usage(`${what}: ${file} is too large`);
    return readFileSync(file);
  } catch (error) {
    if ((error as { exitCode?: unknown }).exitCode !== undefined) throw error;
    throw usage(
      `${what}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

const stringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((v) => typeof v === 'string');

/** One entry of a providers file, checked; `base` resolves a relative `ca_file`. */
function fileProvider(name: string, entry: unknown, base: string, file: string): Provider {
  const bad = (why: string) => usage(`--broker-providers ${file}: provider "${name}": ${why}`);
  if (!PROVIDER_NAME.test(name)) {
    throw usage(
      `--broker-providers ${file}: provider names are lower-case letters, digits, "_" and "-" (at most 32)`,
    );
  }
  if (Object.hasOwn(BUILTIN_PROVIDERS, name)) throw bad('is a built-in provider');
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw bad('must be an object');
  }
  const e = entry as Record<string, unknown>;
  const known = [
    'origin',
    'path_prefix',
    'base_path',
    'auth_header',
    'auth_format',
    'base_url_env',
    'key_env',
    'ca_file',
  ];
  const unknown = Object.keys(e).find((k) => !known.includes(k));
  if (unknown !== undefined) throw bad(`unknown member "${unknown.slice(0, 40)}"`);
  let url: URL;
  try {
    url = new URL(String(e['origin']));
  } catch {
    throw bad('origin is not a URL');
  }
  // Policy: the real key never travels in clear, so only an https origin is ever used.
  if (url.protocol !== 'https:') throw bad('origin must be https://');
  if (
    typeof e['origin'] !== 'string' ||
    url.username !== '' ||
    url.password !== '' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.pathname !== '/' ||
    e['origin'].replace(/\/$/, '') !== url.origin
  ) {
    throw bad('origin must be https://host[:port] with no path, query or credentials');
  }
  const pathPrefix = e['path_prefix'];
  if (typeof pathPrefix !== 'string' || !URL_PATH.test(pathPrefix)) {
    throw bad('path_prefix must be a path such as /v1');
  }
  const basePath = e['base_path'] ?? pathPrefix;
  if (typeof basePath !== 'string' || (basePath !== '' && !URL_PATH.test(basePath))) {
    throw bad('base_path must be empty or a path such as /v1');
  }
  const authHeader = e['auth_header'];
  if (
    typeof authHeader !== 'string' ||
    !HEADER_NAME.test(authHeader) ||
    RESERVED_HEADERS.has(authHeader)
  ) {
    throw bad('auth_header must be a lower-case header name the broker does not own');
  }
  const authFormat = e['auth_format'];
  if (
    typeof authFormat !== 'string' ||
    authFormat.split('{key}').length !== 2 ||
    !/^[\x20-\x7e]*$/.test(authFormat)
  ) {
    throw bad('auth_format must be printable text holding "{key}" once');
  }
  const baseUrlEnv = e['base_url_env'];
  const keyEnv = e['key_env'];
  for (const [field, list] of [
    ['base_url_env', baseUrlEnv],
    ['key_env', keyEnv],
  ] as const) {
    if (!stringList(list) || list.length === 0 || !list.every((v) => ENV_NAME.test(v))) {
      throw bad(`${field} must be a non-empty list of environment variable names`);
    }
  }
  let ca: Buffer | null = null;
  if (e['ca_file'] !== undefined) {
    if (typeof e['ca_file'] !== 'string' || e['ca_file'] === '')
      throw bad('ca_file must be a path');
    ca = readSmall(
      resolve(base, e['ca_file']),
      MAX_CA_BYTES,
      `--broker-providers ${file}: ca_file`,
    );
    if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
      throw bad('ca_file holds no PEM certificate');
    }
  }
  return {
    name,
    origin: url.origin,
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 443 : Number(url.port),
    pathPrefix,
    basePath,
    authHeader,
    authFormat,
    baseUrlEnv: baseUrlEnv as string[],
    keyEnv: keyEnv as string[],
    ca,
  };
}

/** The built-in providers plus those of `file` (when given), by name. */
export function loadProviders(file: string | undefined): Map<string, Provider> {
  const providers = new Map(Object.entries(BUILTIN_PROVIDERS));
  if (file === undefined) return providers;
  const text = readSmall(file, MAX_PROVIDERS_BYTES, '--broker-providers').toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw usage(`--broker-providers ${file} is not JSON`);
  }
  const list = (body as { providers?: unknown } | null)?.providers;
  if (typeof list !== 'object' || list === null || Array.isArray(list)) {
    throw usage(`--broker-providers ${file} must be {"providers": {"<name>": {...}}}`);
  }
  for (const [name, entry] of Object.entries(list)) {
    providers.set(name, fileProvider(name, entry, dirname(resolve(file)), file));
  }
  return providers;
}

/** A brokered provider and the ref of its key. */
export interface Brokered {
  provider: Provider;
  ref: string;
}

/** The `--broker <provider>=<ref>` pairs, checked: known providers, each once, well-formed refs. */
export function parseBrokers(
  pairs: readonly string[],
  providers: ReadonlyMap<string, Provider>,
): Brokered[] {
  const seen = new Set<string>();
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq);
    const ref = pair.slice(eq + 1);
    if (eq === -1 || !PROVIDER_NAME.test(name)) {
      throw usage('--broker must be PROVIDER=REF, e.g. openai=agentpack.secret://AGENT/NAME');
    }
    const provider = providers.get(name);
    if (provider === undefined) {
      throw usage(
        `--broker ${name}: unknown provider (known: ${[...providers.keys()].join(', ')}; add one with --broker-providers)`,
      );
    }
    if (!ref.startsWith(SECRET_REF_PREFIX) || !CREDENTIAL_VALUE_PATTERN.test(ref)) {
      throw usage(
        `--broker ${name}: the reference must be ${SECRET_REF_PREFIX}AGENT/NAME[#VERSION]`,
      );
    }
    if (seen.has(name)) throw usage(`--broker ${name} given more than once`);
    seen.add(name);
    return { provider, ref };
  });
}
