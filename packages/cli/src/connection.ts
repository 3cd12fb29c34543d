/**
 * How an operator command reaches the service: the URL and the credential, each from the
 * first place that has it — a flag, then the environment, then the profile file — and one
 * call that POSTs a body with a deadline and turns any refusal into a one-line failure with
 * the service's code and message (exit 3 for not_found, 1 otherwise). The bridge key is never
 * taken from the command line (other users read argv in `ps`): only from a file, the
 * environment or the profile.
 *
 *   url          --url URL            > $AGENTPACK_URL             > profile url
 *   bridge key   --bridge-key-file F  > $AGENTPACK_BRIDGE_KEY > $AGENTPACK_BRIDGE_KEY_FILE
 *                                      > profile bridge_key_file  > profile bridge_key
 *   device key   --device-key-file F  > $AGENTPACK_DEVICE_KEY_FILE > profile device_key_file
 */
import { agentIdField, CREDENTIAL_HEADERS } from '@agentpack-identity/protocol';
import { deviceHeaders, readDeviceCredential, type DeviceCredential } from './device-credential.js';
import { CliError, EXIT, NAME, usage, type CliIo } from './io.js';
import { readPrivateFile } from './private-files.js';
import { selectProfile, type SelectedProfile } from './profile.js';
import { checked } from './validate.js';
import { answerObject, describeAnswer, post, REQUEST_TIMEOUT_MS, serviceUrl } from './service.js';

/** The options of every command that talks to the service. */
export const CONNECTION_VALUES = ['url', 'profile', 'bridge-key-file'] as const;
/** ... and of those that may act as an agent. */
export const AGENT_VALUES = [...CONNECTION_VALUES, 'device-key-file'] as const;

/** Options that would put a credential in argv: refused, with where it goes instead. */
export const REFUSED_CREDENTIALS = {
  'bridge-key':
    'a key in the command line is visible to other users (ps); use --bridge-key-file FILE or $AGENTPACK_BRIDGE_KEY',
  'device-key':
    'a key in the command line is visible to other users (ps); use --device-key-file FILE',
} as const;

export const CONNECTION_HELP = `  --url URL              the service (default: $AGENTPACK_URL, else the profile's url);
                         plain http only to loopback addresses
  --profile NAME         the profile to use (default: $AGENTPACK_PROFILE, else the current one)
  --bridge-key-file FILE the bridge key (default: $AGENTPACK_BRIDGE_KEY, else the file
                         $AGENTPACK_BRIDGE_KEY_FILE, else the profile's)`;

export const DEVICE_HELP = `  --device-key-file FILE act as the agent of this device key (default:
                         $AGENTPACK_DEVICE_KEY_FILE, else the profile's device-key-file)`;

/** ... for the commands that take the bridge key unless a device key file is given. */
export const DEVICE_FLAG_HELP = `  --device-key-file FILE act as the agent of this device key (without it: the bridge key)`;

export type Credential =
  { kind: 'bridge'; key: string } | { kind: 'device'; device: DeviceCredential };

/** Where to send requests and with what credential. */
export interface Connection {
  url: string;
  credential: Credential;
  profile: SelectedProfile;
}

interface ConnectionOptions {
  url?: string;
  profile?: string;
  'bridge-key-file'?: string;
  'device-key-file'?: string;
}

const nonEmpty = (value: string | undefined) =>
  value === undefined || value === '' ? undefined : value;

/** Says on stderr when the environment overrides what a profile named on purpose sets. */
function noteOverride(io: CliIo, profile: SelectedProfile, variable: string, setting: string) {
  if (profile.explicit) {
    io.stderr(
      `${NAME}: note: $${variable} overrides the ${setting} of profile "${profile.name}"\n`,
    );
  }
}

function resolveUrl(opts: ConnectionOptions, io: CliIo, profile: SelectedProfile): string {
  if (opts.url !== undefined) return serviceUrl(opts.url, '--url');
  const env = nonEmpty(io.env['AGENTPACK_URL']);
  if (env !== undefined) {
    if (profile.profile.url !== undefined) noteOverride(io, profile, 'AGENTPACK_URL', 'url');
    return serviceUrl(env, 'AGENTPACK_URL');
  }
  if (profile.profile.url !== undefined) {
    return serviceUrl(profile.profile.url, `the url of profile "${profile.name}"`);
  }
  throw usage(
    `no service URL: give --url URL, set AGENTPACK_URL, or run "${NAME} config set url URL"`,
  );
}

/** A bridge key as a header can carry it: printable ASCII, no space. Never echoed. */
function checkBridgeKey(key: string, where: string): string {
  if (!/^[\x21-\x7e]{1,512}$/.test(key)) throw new CliError(`${where} does not hold a bridge key`);
  return key;
}

function resolveBridgeKey(opts: ConnectionOptions, io: CliIo, profile: SelectedProfile): string {
  const flag = opts['bridge-key-file'];
  if (flag !== undefined) return checkBridgeKey(readPrivateFile(flag), flag);
  const profileHasOne =
    profile.profile.bridge_key_file !== undefined || profile.profile.bridge_key !== undefined;
  const env = nonEmpty(io.env['AGENTPACK_BRIDGE_KEY']?.trim());
  if (env !== undefined) {
    if (profileHasOne) noteOverride(io, profile, 'AGENTPACK_BRIDGE_KEY', 'bridge key');
    return checkBridgeKey(env, 'AGENTPACK_BRIDGE_KEY');
  }
  const envFile = nonEmpty(io.env['AGENTPACK_BRIDGE_KEY_FILE']);
  if (envFile !== undefined) {
    if (profileHasOne) noteOverride(io, profile, 'AGENTPACK_BRIDGE_KEY_FILE', 'bridge key');
    return checkBridgeKey(readPrivateFile(envFile), envFile);
  }
  const file = profile.profile.bridge_key_file;
  if (file !== undefined) return checkBridgeKey(readPrivateFile(file), file);
  if (profile.profile.bridge_key !== undefined) {
    return checkBridgeKey(profile.profile.bridge_key, `profile "${profile.name}"`);
  }
  throw usage(
    `no bridge key: give --bridge-key-file FILE, set AGENTPACK_BRIDGE_KEY_FILE, or run "${NAME} config set bridge-key-file FILE"`,
  );
}

/** The device key file to act with, if any is configured (flag, env, profile). */
function deviceKeyFile(opts: ConnectionOptions, io: CliIo, profile: SelectedProfile) {
  return (
    opts['device-key-file'] ??
    nonEmpty(io.env['AGENTPACK_DEVICE_KEY_FILE']) ??
    profile.profile.device_key_file
  );
}

/** True when a device key is configured (flag, env or the profile). */
export function deviceKeyConfigured(opts: ConnectionOptions, io: CliIo): boolean {
  return deviceKeyFile(opts, io, selectProfile(opts.profile, io)) !== undefined;
}

/**
 * The connection of a command. `as`: `bridge` (the operator), `device` (an agent: a device key
 * must be configured), or `either` (the device key when --device-key-file is given, else the
 * bridge key).
 */
export function connect(
  opts: ConnectionOptions,
  io: CliIo,
  as: 'bridge' | 'device' | 'either',
): Connection {
  const profile = selectProfile(opts.profile, io);
  const url = resolveUrl(opts, io, profile);
  if (as === 'bridge' && opts['device-key-file'] !== undefined) {
    throw usage('this command takes the bridge key, not --device-key-file');
  }
  const useDevice = as === 'device' || (as === 'either' && opts['device-key-file'] !== undefined);
  if (!useDevice)
    return {
      url,
      credential: { kind: 'bridge', key: resolveBridgeKey(opts, io, profile) },
      profile,
    };
  const file = deviceKeyFile(opts, io, profile);
  if (file === undefined) {
    throw usage('no device key: give --device-key-file FILE (or set AGENTPACK_DEVICE_KEY_FILE)');
  }
  return { url, credential: { kind: 'device', device: readDeviceCredential(file) }, profile };
}

/** Options of {@link call}. */
export interface CallOptions {
  /** Statuses that count as success (default 200 and 201). */
  ok?: (status: number) => boolean;
  timeoutMs?: number;
  /** Ends the call early (e.g. on SIGINT). */
  signal?: AbortSignal;
  /** Removed from any failure message (e.g. the secret value a request carried). */
  redact?: string;
}

/**
 * POSTs `body` to the route `path` and returns the answer's JSON object; a refusal is a
 * CliError with the service's code and message (exit 3 for 404, else 1).
 */
export async function call(
  conn: Connection,
  path: string,
  body: Record<string, unknown>,
  io: CliIo,
  options: CallOptions = {},
): Promise<Record<string, unknown>> {
  const text = JSON.stringify(body);
  const headers =
    conn.credential.kind === 'bridge'
      ? { [CREDENTIAL_HEADERS.bridge]: conn.credential.key }
      : deviceHeaders(conn.credential.device, path, text, io);
  const ok = options.ok ?? ((s: number) => s === 200 || s === 201);
  const scrub = (message: string) =>
    options.redact === undefined || options.redact === ''
      ? message
      : message.split(options.redact).join('[redacted]');
  try {
    const res = await post(
      `${conn.url}${path}`,
      headers,
      text,
      path,
      options.timeoutMs ?? REQUEST_TIMEOUT_MS,
      options.signal,
    );
    if (!ok(res.status)) {
      const code = res.status === 404 ? EXIT.notFound : EXIT.failed;
      throw new CliError(`${path}: ${describeAnswer(res.status, res.text)}`, code);
    }
    return answerObject(res.status, res.text, path, () => true);
  } catch (error) {
    if (error instanceof CliError) throw new CliError(scrub(error.message), error.exitCode);
    throw error;
  }
}

/**
 * Who a command that serves both acts as: `--agent AGENT` → the operator (bridge key, the body
 * names the agent); else the agent of the configured device key.
 */
export function agentOrDevice(
  opts: { agent?: string; 'device-key-file'?: string; profile?: string },
  io: CliIo,
): { body: { agent_id?: string }; as: 'bridge' | 'device' } {
  if (opts.agent !== undefined && opts['device-key-file'] !== undefined) {
    throw usage('give --agent (as the operator) or --device-key-file (as the agent), not both');
  }
  if (opts.agent !== undefined) {
    return { body: { agent_id: checked(agentIdField, opts.agent, '--agent') }, as: 'bridge' };
  }
  if (!deviceKeyConfigured(opts, io)) {
    throw usage('--agent AGENT is required (or --device-key-file FILE, as the agent)');
  }
  return { body: {}, as: 'device' };
}
