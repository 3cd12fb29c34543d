/**
 * The operator's profile file: named profiles of where the service is and which credential
 * files to use, so no command has to repeat them. JSON, mode 0600 in a 0700 directory:
 *   $AGENTPACK_CONFIG, else $XDG_CONFIG_HOME/agentpack-identity/config.json, else
 *   ~/.config/agentpack-identity/config.json
 * It holds file PATHS of credentials, never a credential in clear — unless the operator asks
 * (`config set bridge-key --from-stdin --store-secret`). A file others can read is refused, as
 * ssh refuses such a key. The profile is `--profile NAME`, else $AGENTPACK_PROFILE, else the
 * file's current one (`config use NAME`), else "default".
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, renameSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError, usage, type CliIo } from './io.js';
import { makePrivateDir, readPrivateFile, writePrivateFile } from './private-files.js';
import { didYouMean } from './suggest.js';

const MAX_CONFIG_BYTES = 256 * 1024;
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const DEFAULT_PROFILE = 'default';

/** One profile. Every field is optional; `bridge_key` is there only when asked for. */
export interface Profile {
  url?: string;
  bridge_key_file?: string;
  device_key_file?: string;
  /** The bridge key itself, in clear: only with `config set bridge-key --store-secret`. */
  bridge_key?: string;
}

export interface ConfigFile {
  current?: string;
  profiles: Record<string, Profile>;
}

/** The settings `config set|get|unset` know, by their command-line name. */
export const PROFILE_KEYS = {
  url: 'url',
  'bridge-key-file': 'bridge_key_file',
  'device-key-file': 'device_key_file',
  'bridge-key': 'bridge_key',
} as const satisfies Record<string, keyof Profile>;
export type ProfileKey = keyof typeof PROFILE_KEYS;

/** Where the profile file is, from the environment. */
export function configPath(env: CliIo['env']): string {
  const explicit = env['AGENTPACK_CONFIG'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = env['XDG_CONFIG_HOME'];
  const base =
    xdg !== undefined && xdg.startsWith('/') ? xdg : join(env['HOME'] ?? homedir(), '.config');
  return join(base, 'agentpack-identity', 'config.json');
}

const exists = (file: string) => {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
};

/** Reads the profile file (an empty one when there is none yet). */
export function readConfig(file: string): ConfigFile {
  if (!exists(file)) return { profiles: {} };
  const text = readPrivateFile(file, MAX_CONFIG_BYTES);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not a JSON profile file`);
  }
  const bad = () => new CliError(`${file} is not a profile file ({"profiles": {...}})`);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad();
  const { current, profiles } = body as { current?: unknown; profiles?: unknown };
  if (current !== undefined && typeof current !== 'string') throw bad();
  if (profiles !== undefined && (typeof profiles !== 'object' || profiles === null)) throw bad();
  const out: ConfigFile = { profiles: {} };
  if (current !== undefined) out.current = current;
  for (const [name, raw] of Object.entries((profiles ?? {}) as Record<string, unknown>)) {
    if (!PROFILE_NAME.test(name) || typeof raw !== 'object' || raw === null) throw bad();
    const profile: Profile = {};
    for (const key of Object.values(PROFILE_KEYS)) {
      const value = (raw as Record<string, unknown>)[key];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw bad();
      profile[key] = value;
    }
    out.profiles[name] = profile;
  }
  return out;
}

/** Writes the profile file atomically: a new 0600 file renamed over the old one. */
export function writeConfig(file: string, config: ConfigFile): void {
  makePrivateDir(dirname(file));
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  writePrivateFile(temp, `${JSON.stringify(config, null, 2)}\n`);
  try {
    renameSync(temp, file);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw new CliError(
      `cannot write ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/** A profile name given on the command line or in the environment, checked. */
export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) {
    throw usage('a profile name is 1-64 letters, digits, "_", "." or "-"');
  }
  return name;
}

/** The selected profile: its name, its settings, and whether it was asked for by name. */
export interface SelectedProfile {
  name: string;
  profile: Profile;
  /** True when --profile or $AGENTPACK_PROFILE named it. */
  explicit: boolean;
  file: string;
}

/**
 * The profile a command uses. A profile asked for by name must exist; the default one may be
 * absent (then it is empty).
 */
export function selectProfile(flag: string | undefined, io: CliIo): SelectedProfile {
  const file = configPath(io.env);
  const config = readConfig(file);
  const asked = flag ?? (io.env['AGENTPACK_PROFILE'] || undefined);
  const name = checkProfileName(asked ?? config.current ?? DEFAULT_PROFILE);
  const profile = config.profiles[name];
  if (profile === undefined && asked !== undefined) {
    throw usage(`no profile "${name}" in ${file}${didYouMean(name, Object.keys(config.profiles))}`);
  }
  return { name, profile: profile ?? {}, explicit: asked !== undefined, file };
}
