/**
 * The `keys` group: agents' device keys — issue (shown once; to a private file with --out),
 * list, revoke — beside `keys generate`, the operator's capability-token signing key
 * (commands/tokens.ts). With the bridge key the operator names the agent (`--agent`); with
 * `--device-key-file` an agent manages its own keys.
 */
import { join } from 'node:path';
import {
  deviceIssueRequest,
  deviceListRequest,
  deviceRevokeRequest,
  isWellFormedDeviceKey,
} from '@agentpack-identity/protocol';
import {
  AGENT_VALUES,
  call,
  connect,
  CONNECTION_HELP,
  agentOrDevice,
  DEVICE_FLAG_HELP,
  DEVICE_HELP,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { CliError, NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { intOption, parseOptions } from '../options.js';
import { LIST_OPTIONS_HELP, PAGE_FLAGS, PAGE_VALUES, runList } from '../paging.js';
import { refuseExisting, writePrivateFile } from '../private-files.js';
import { field, OUTPUT_FLAGS, OUTPUT_HELP, outputMode, printObject } from '../table.js';
import { checked } from '../validate.js';
import { revokeCommand } from '../revoke-command.js';
import { KEYS as SIGNING_KEYS } from './tokens.js';

const HELP = {
  group: `usage: ${NAME} keys issue (--agent AGENT | --device-key-file FILE) [--label LABEL]
           [--ttl SECONDS] [--out FILE]
       ${NAME} keys list (--agent AGENT | --device-key-file FILE) [--include-revoked]
       ${NAME} keys revoke KEY_ID
       ${NAME} keys generate --out FILE [--kid KID]

  issue, list, revoke   agents' device keys, on the service
  generate              the operator's capability-token signing key, offline

Run "${NAME} keys COMMAND --help" for a command's options.
`,
  issue: `usage: ${NAME} keys issue --agent AGENT [--label LABEL] [--ttl SECONDS] [--out FILE]
       ${NAME} keys issue --device-key-file FILE [--rotate] [--label LABEL] [--ttl SECONDS]
           [--out FILE]

Issues a device key (POST /device/issue): with the bridge key for --agent, or with an agent's
own device key (--rotate also revokes that key). The key is shown once: with --out it is
written to FILE (mode 0600, never over an existing file) and left out of what is printed;
without, it is printed with the rest (stdout only).

options:
  --agent AGENT          the agent (as the operator, with the bridge key)
  --label LABEL          a label for the key
  --ttl SECONDS          its lifetime (default: none)
  --rotate               with --device-key-file: revoke the calling key once issued
  --out FILE             write the new device key to FILE instead of printing it
${OUTPUT_HELP}
${CONNECTION_HELP}
${DEVICE_HELP}
  -h, --help             this help
`,
  list: `usage: ${NAME} keys list --agent AGENT [--include-revoked] [--limit N] [--all]
       ${NAME} keys list --device-key-file FILE [--include-revoked] [--limit N] [--all]

Lists an agent's device keys by creation time (POST /device/list), never a key itself: with
the bridge key for --agent, or an agent's own with its device key.

options:
  --agent AGENT          the agent (as the operator, with the bridge key)
  --include-revoked      revoked keys too
${LIST_OPTIONS_HELP}
${DEVICE_HELP}
  -h, --help             this help
`,
  revoke: `usage: ${NAME} keys revoke KEY_ID [--device-key-file FILE]

Revokes a device key (POST /device/revoke), at once: with the bridge key (any agent's), or with
a device key given with --device-key-file (its own agent's keys; another agent's key is not
found, exit 3). Without --device-key-file, the bridge key.

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
${DEVICE_FLAG_HELP}
  -h, --help             this help
`,
} as const;

export const KEY_COLUMNS = [
  field('key_id', 'KEY'),
  field('label'),
  field('enrolled'),
  field('created_at', 'CREATED'),
  field('expires_at', 'EXPIRES'),
  field('revoked_at', 'REVOKED'),
];

async function keysIssue(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...AGENT_VALUES, 'agent', 'label', 'ttl', 'out'],
    flags: [...OUTPUT_FLAGS, 'rotate'],
    refused: REFUSED_CREDENTIALS,
  });
  const who = agentOrDevice(opts, io);
  if (opts.rotate === true && who.as === 'bridge') {
    throw usage('--rotate revokes the calling device key: use it with --device-key-file');
  }
  const ttl = intOption(opts.ttl, 'ttl', 1, 10 ** 9);
  const body = checked(
    deviceIssueRequest,
    {
      ...who.body,
      ...(opts.label === undefined ? {} : { label: opts.label }),
      ...(ttl === undefined ? {} : { ttl_seconds: ttl }),
      ...(opts.rotate === true ? { rotate: true } : {}),
    },
    'keys issue',
  );
  if (opts.out !== undefined) refuseExisting([opts.out], 'refusing to overwrite it');
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, who.as);
  const answer = await call(conn, '/device/issue', body, io);
  if (opts.out === undefined) {
    printObject(io, mode, answer);
    return 0;
  }
  const { device_key: key, ...rest } = answer;
  if (typeof key !== 'string' || !isWellFormedDeviceKey(key)) {
    throw new CliError('/device/issue: the answer has no device key');
  }
  writePrivateFile(opts.out, `${key}\n`);
  printObject(io, mode, rest);
  io.stderr(`device key written to ${join(opts.out)} (mode 0600)\n`);
  return 0;
}

async function keysList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...AGENT_VALUES, ...PAGE_VALUES, 'agent'],
    flags: [...OUTPUT_FLAGS, ...PAGE_FLAGS, 'include-revoked'],
    refused: REFUSED_CREDENTIALS,
  });
  const who = agentOrDevice(opts, io);
  const body = { ...who.body, ...(opts['include-revoked'] ? { include_revoked: true } : {}) };
  return runList(
    { path: '/device/list', key: 'keys', columns: KEY_COLUMNS, schema: deviceListRequest },
    body,
    opts,
    io,
    who.as,
  );
}

const keysRevoke = revokeCommand({
  path: '/device/revoke',
  positional: 'KEY_ID',
  field: 'key_id',
  schema: deviceRevokeRequest,
});

export const KEYS: CommandGroup = {
  help: HELP.group,
  hint: 'keys --help',
  commands: {
    issue: { help: HELP.issue, run: keysIssue },
    list: { help: HELP.list, run: keysList },
    revoke: { help: HELP.revoke, run: keysRevoke },
    ...SIGNING_KEYS.commands,
  },
};
