/**
 * The `config` group: the operator's profile file (profile.ts) — set, get and unset a
 * profile's settings, list the profiles, pick the current one. It stores credential file
 * PATHS; the bridge key itself only with `set bridge-key --from-stdin --store-secret`, with a
 * warning, and it is never printed back.
 */
import { resolve } from 'node:path';
import { CliError, EXIT, NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions } from '../options.js';
import { isFile } from '../private-files.js';
import {
  checkProfileName,
  configPath,
  DEFAULT_PROFILE,
  PROFILE_KEYS,
  readConfig,
  writeConfig,
  type ConfigFile,
  type ProfileKey,
} from '../profile.js';
import { readSecretValue } from '../secret-value.js';
import { serviceUrl } from '../service.js';
import { didYouMean } from '../suggest.js';
import {
  field,
  OUTPUT_FLAGS,
  OUTPUT_HELP,
  outputMode,
  printObject,
  renderTable,
} from '../table.js';

const KEYS_HELP = `keys:
  url               the service's base URL (https, or http to a loopback address)
  bridge-key-file   the file holding the bridge key (kept as a path; the file stays 0600)
  device-key-file   an agent's device key file, for the commands that act as the agent
  bridge-key        the bridge key itself, in this file, in clear: only with
                    --from-stdin --store-secret (prefer bridge-key-file)`;

const PRECEDENCE = `Each setting is taken from the first place that has it: a flag (--url, --bridge-key-file,
--device-key-file), then the environment ($AGENTPACK_URL; $AGENTPACK_BRIDGE_KEY, then
$AGENTPACK_BRIDGE_KEY_FILE; $AGENTPACK_DEVICE_KEY_FILE), then the profile.`;

const HELP = {
  group: `usage: ${NAME} config set KEY VALUE [--profile NAME]
       ${NAME} config set bridge-key --from-stdin --store-secret [--profile NAME]
       ${NAME} config get KEY [--profile NAME]
       ${NAME} config unset KEY [--profile NAME]
       ${NAME} config list
       ${NAME} config use NAME
       ${NAME} config path

The profile file: $AGENTPACK_CONFIG, else $XDG_CONFIG_HOME/agentpack-identity/config.json,
else ~/.config/agentpack-identity/config.json (mode 0600 in a 0700 directory; a file others
can read is refused). The profile: --profile NAME, else $AGENTPACK_PROFILE, else the current
one ("config use"), else "${DEFAULT_PROFILE}".
${PRECEDENCE}

${KEYS_HELP}

Run "${NAME} config COMMAND --help" for a command's options.
`,
  set: `usage: ${NAME} config set KEY VALUE [--profile NAME]
       ${NAME} config set bridge-key --from-stdin --store-secret [--profile NAME]

Sets KEY in the profile (creating the profile and the file, 0600, if needed). File paths are
stored absolute. The bridge key itself is stored only when asked twice — it is then in clear
in the file (0600): prefer bridge-key-file.

${KEYS_HELP}

options:
  --profile NAME    the profile (default: $AGENTPACK_PROFILE, else the current one)
  --from-stdin      (bridge-key) read the key from stdin (typed without echo on a terminal)
  --store-secret    (bridge-key) yes, store the key itself in the file
  -h, --help        this help
`,
  get: `usage: ${NAME} config get KEY [--profile NAME]

Prints KEY of the profile. Not set: exit 3. A stored bridge key is never printed.

options:
  --profile NAME    the profile
  -h, --help        this help
`,
  unset: `usage: ${NAME} config unset KEY [--profile NAME]

Removes KEY from the profile.

options:
  --profile NAME    the profile
  -h, --help        this help
`,
  list: `usage: ${NAME} config list

Lists the profiles and their settings (a stored bridge key shows as "(stored)"), the current
one marked *.

options:
${OUTPUT_HELP}
  -h, --help        this help
`,
  use: `usage: ${NAME} config use NAME

Makes NAME the current profile (it must exist: create it with "config set ... --profile NAME").
`,
  path: `usage: ${NAME} config path

Prints where the profile file is (it may not exist yet).
`,
} as const;

function profileKey(key: string): ProfileKey {
  if (!Object.hasOwn(PROFILE_KEYS, key)) {
    throw usage(`unknown key "${key}"${didYouMean(key, Object.keys(PROFILE_KEYS))}`);
  }
  return key as ProfileKey;
}

/** The profile `config set|get|unset` works on. */
function targetProfile(flag: string | undefined, io: CliIo, config: ConfigFile): string {
  return checkProfileName(
    flag ?? (io.env['AGENTPACK_PROFILE'] || undefined) ?? config.current ?? DEFAULT_PROFILE,
  );
}

async function configSet(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: ['profile'],
    flags: ['from-stdin', 'store-secret'],
    positionals: ['KEY', 'VALUE?'],
  });
  const key = profileKey(opts._[0]!);
  const text = opts._[1];
  const file = configPath(io.env);
  const config = readConfig(file);
  const name = targetProfile(opts.profile, io, config);
  let value: string;
  if (key === 'bridge-key') {
    if (text !== undefined) {
      throw usage('a key in the command line is visible to other users (ps): use --from-stdin');
    }
    if (opts['from-stdin'] !== true || opts['store-secret'] !== true) {
      throw usage(
        'storing the bridge key in clear needs --from-stdin --store-secret; prefer "config set bridge-key-file FILE"',
      );
    }
    value = await readSecretValue({}, io, 'the bridge key');
    if (!/^[\x21-\x7e]{1,512}$/.test(value)) throw new CliError('that is not a bridge key');
  } else {
    if (opts['from-stdin'] === true || opts['store-secret'] === true) {
      throw usage('--from-stdin and --store-secret are for bridge-key only');
    }
    if (text === undefined || text === '') throw usage('VALUE is required');
    if (key === 'url') {
      value = serviceUrl(text, 'url');
    } else {
      value = resolve(text);
      if (!isFile(value)) io.stderr(`${NAME}: note: ${value} does not exist (yet)\n`);
    }
  }
  const profile = { ...(config.profiles[name] ?? {}), [PROFILE_KEYS[key]]: value };
  writeConfig(file, { ...config, profiles: { ...config.profiles, [name]: profile } });
  if (key === 'bridge-key') {
    io.stderr(
      `${NAME}: warning: the bridge key is now stored in clear in ${file} (mode 0600); anyone who can read that file is the operator\n`,
    );
  } else {
    io.stderr(`${key} set in profile "${name}" (${file})\n`);
  }
  return 0;
}

async function configGet(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { values: ['profile'], positionals: ['KEY'] });
  const key = profileKey(opts._[0]!);
  const config = readConfig(configPath(io.env));
  const name = targetProfile(opts.profile, io, config);
  const value = config.profiles[name]?.[PROFILE_KEYS[key]];
  if (value === undefined)
    throw new CliError(`${key} is not set in profile "${name}"`, EXIT.notFound);
  if (key === 'bridge-key') {
    io.stdout('(stored)\n');
    io.stderr(`${NAME}: a stored bridge key is never printed\n`);
    return 0;
  }
  io.stdout(`${value}\n`);
  return 0;
}

async function configUnset(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { values: ['profile'], positionals: ['KEY'] });
  const key = profileKey(opts._[0]!);
  const file = configPath(io.env);
  const config = readConfig(file);
  const name = targetProfile(opts.profile, io, config);
  const profile = { ...(config.profiles[name] ?? {}) };
  delete profile[PROFILE_KEYS[key]];
  writeConfig(file, { ...config, profiles: { ...config.profiles, [name]: profile } });
  io.stderr(`${key} removed from profile "${name}"\n`);
  return 0;
}

async function configList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { flags: OUTPUT_FLAGS });
  const mode = outputMode(opts, io);
  const file = configPath(io.env);
  const config = readConfig(file);
  const current = config.current ?? DEFAULT_PROFILE;
  const profiles = Object.fromEntries(
    Object.entries(config.profiles).map(([name, p]) => [
      name,
      { ...p, ...(p.bridge_key === undefined ? {} : { bridge_key: '(stored)' }) },
    ]),
  );
  if (mode === 'json') {
    printObject(io, mode, { file, current, profiles });
    return 0;
  }
  const rows = Object.entries(profiles).map(([name, p]) => ({
    profile: `${name === current ? '*' : ' '}${name}`,
    ...p,
    bridge: p.bridge_key_file ?? p.bridge_key,
  }));
  if (rows.length === 0) io.stderr(`no profiles in ${file}\n`);
  else {
    io.stdout(
      `${renderTable(rows, [
        field('profile'),
        field('url'),
        field('bridge', 'BRIDGE KEY'),
        field('device_key_file', 'DEVICE KEY FILE'),
      ])}\n`,
    );
  }
  return 0;
}

async function configUse(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { positionals: ['NAME'] });
  const name = checkProfileName(opts._[0]!);
  const file = configPath(io.env);
  const config = readConfig(file);
  if (!Object.hasOwn(config.profiles, name)) {
    throw usage(`no profile "${name}" in ${file}${didYouMean(name, Object.keys(config.profiles))}`);
  }
  writeConfig(file, { ...config, current: name });
  io.stderr(`current profile: ${name}\n`);
  return 0;
}

function configPathCommand(args: readonly string[], io: CliIo): number {
  parseOptions(args, {});
  io.stdout(`${configPath(io.env)}\n`);
  return 0;
}

export const CONFIG: CommandGroup = {
  help: HELP.group,
  hint: 'config --help',
  commands: {
    set: { help: HELP.set, run: configSet },
    get: { help: HELP.get, run: configGet },
    unset: { help: HELP.unset, run: configUnset },
    list: { help: HELP.list, run: configList },
    use: { help: HELP.use, run: configUse },
    path: { help: HELP.path, run: configPathCommand },
  },
};
