/**
 * The `settings` group: the service's allow-listed runtime settings (bridge key) — list them
 * with their defaults and descriptions, set one (the service checks each value by its own
 * schema and answers with the previous value).
 */
import { settingsSetRequest } from '@agentpack-identity/protocol';
import {
  call,
  connect,
  CONNECTION_HELP,
  CONNECTION_VALUES,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { CliError, NAME, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions } from '../options.js';
import { field, OUTPUT_FLAGS, OUTPUT_HELP, outputMode, printList, printObject } from '../table.js';
import { checked } from '../validate.js';

const HELP = {
  group: `usage: ${NAME} settings list
       ${NAME} settings set KEY VALUE

Run "${NAME} settings COMMAND --help" for a command's options.
`,
  list: `usage: ${NAME} settings list

Lists the service's settings with their values, defaults and descriptions (POST
/settings/list, bridge key).

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  set: `usage: ${NAME} settings set KEY VALUE [--string]

Sets one setting (POST /settings/set, bridge key) and prints {key, value, previous}. VALUE is
read as JSON (20, true, ["a"]) and, when it is not JSON, as a string; --string always sends
it as a string. Only allow-listed keys exist ("settings list"); each value is checked by the
service.

options:
  --string               send VALUE as a string, even if it reads as JSON
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
} as const;

const SETTING_COLUMNS = [field('key'), field('value'), field('default'), field('description')];

async function settingsList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: CONNECTION_VALUES,
    flags: OUTPUT_FLAGS,
    refused: REFUSED_CREDENTIALS,
  });
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  const answer = await call(conn, '/settings/list', {}, io);
  const list = answer['settings'];
  if (!Array.isArray(list)) throw new CliError('/settings/list: the answer has no settings list');
  if (mode === 'json') printObject(io, mode, answer);
  else printList(io, mode, 'settings', list as Record<string, unknown>[], SETTING_COLUMNS, null);
  return 0;
}

function settingValue(text: string, asString: boolean): unknown {
  if (asString) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function settingsSet(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: CONNECTION_VALUES,
    flags: [...OUTPUT_FLAGS, 'string'],
    positionals: ['KEY', 'VALUE'],
    refused: REFUSED_CREDENTIALS,
  });
  const [key, text] = opts._ as [string, string];
  const body = checked(
    settingsSetRequest,
    { key, value: settingValue(text, opts.string === true) },
    'settings set',
  );
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  printObject(io, mode, await call(conn, '/settings/set', body, io));
  return 0;
}

export const SETTINGS: CommandGroup = {
  help: HELP.group,
  hint: 'settings --help',
  commands: {
    list: { help: HELP.list, run: settingsList },
    set: { help: HELP.set, run: settingsSet },
  },
};
