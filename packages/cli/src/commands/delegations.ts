/**
 * The `delegations` group: who may act for whom. An operator lists any agent's delegations
 * (`--agent`, bridge key) and revokes any; an agent lists its own, creates one (a delegation
 * is always made by the delegating agent, with its device key: the bridge key cannot grant
 * another agent's rights) and revokes those it gave or received.
 */
import {
  DELEGATION_DIRECTIONS,
  delegateRequest,
  delegateRevokeRequest,
  delegationsListRequest,
} from '@agentpack-identity/protocol';
import {
  AGENT_VALUES,
  agentOrDevice,
  call,
  connect,
  CONNECTION_HELP,
  DEVICE_FLAG_HELP,
  DEVICE_HELP,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { intOption, listOption, parseOptions, required } from '../options.js';
import { LIST_OPTIONS_HELP, PAGE_FLAGS, PAGE_VALUES, runList } from '../paging.js';
import { field, OUTPUT_FLAGS, OUTPUT_HELP, outputMode, printObject } from '../table.js';
import { checked } from '../validate.js';
import { revokeCommand } from '../revoke-command.js';

const DIRECTIONS: readonly string[] = DELEGATION_DIRECTIONS;

const HELP = {
  group: `usage: ${NAME} delegations list (--agent AGENT | --device-key-file FILE)
           [--direction from|to|both] [--include-inactive] [--limit N] [--all]
       ${NAME} delegations create --device-key-file FILE --to AGENT --scope RPC[,RPC...]
           --ttl SECONDS
       ${NAME} delegations revoke DELEGATION_ID [--device-key-file FILE]

Run "${NAME} delegations COMMAND --help" for a command's options.
`,
  list: `usage: ${NAME} delegations list (--agent AGENT | --device-key-file FILE)
    [--direction from|to|both] [--include-inactive] [--limit N] [--cursor C] [--all]

Lists an agent's delegations (POST /delegations/list): those it gave (from), received (to) or
both; live ones only unless --include-inactive.

options:
  --agent AGENT          the agent (as the operator, with the bridge key)
  --direction DIR        from, to or both (default: the service's, both)
  --include-inactive     revoked and expired ones too
${LIST_OPTIONS_HELP}
${DEVICE_HELP}
  -h, --help             this help
`,
  create: `usage: ${NAME} delegations create --device-key-file FILE --to AGENT --scope RPC[,RPC...]
    --ttl SECONDS

Lets the agent AGENT act for the agent of FILE, within the scope, until the TTL runs out
(POST /delegate, with the delegating agent's device key). Prints the delegation.

options:
  --to AGENT             the delegate
  --scope LIST           comma-separated agent RPCs, each optionally narrowed to one secret,
                         e.g. secrets/get:openai_key
  --ttl SECONDS          its lifetime (at most the setting delegation.max_ttl_seconds)
${OUTPUT_HELP}
${CONNECTION_HELP}
${DEVICE_HELP}
  -h, --help             this help
`,
  revoke: `usage: ${NAME} delegations revoke DELEGATION_ID [--device-key-file FILE]

Revokes a delegation at once (POST /delegate/revoke): with the bridge key (any), or with the
device key (--device-key-file) of the delegating agent or the delegate. Without
--device-key-file, the bridge key.

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
${DEVICE_FLAG_HELP}
  -h, --help             this help
`,
} as const;

export const DELEGATION_COLUMNS = [
  field('delegation_id', 'DELEGATION'),
  field('from_agent', 'FROM'),
  field('to_agent', 'TO'),
  field('scope'),
  field('expires_at', 'EXPIRES'),
  field('revoked_at', 'REVOKED'),
];

async function delegationsList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...AGENT_VALUES, ...PAGE_VALUES, 'agent', 'direction'],
    flags: [...OUTPUT_FLAGS, ...PAGE_FLAGS, 'include-inactive'],
    refused: REFUSED_CREDENTIALS,
  });
  if (opts.direction !== undefined && !DIRECTIONS.includes(opts.direction)) {
    throw usage('--direction must be from, to or both');
  }
  const who = agentOrDevice(opts, io);
  const body = {
    ...who.body,
    ...(opts.direction === undefined ? {} : { direction: opts.direction }),
    ...(opts['include-inactive'] === true ? { include_inactive: true } : {}),
  };
  const spec = {
    path: '/delegations/list',
    key: 'delegations',
    columns: DELEGATION_COLUMNS,
    schema: delegationsListRequest,
  };
  return runList(spec, body, opts, io, who.as);
}

async function delegationsCreate(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...AGENT_VALUES, 'to', 'scope', 'ttl'],
    flags: OUTPUT_FLAGS,
    refused: REFUSED_CREDENTIALS,
  });
  const body = checked(
    delegateRequest,
    {
      to_agent: required(opts.to, 'to'),
      scope: listOption(required(opts.scope, 'scope'), 'scope'),
      ttl_seconds: intOption(required(opts.ttl, 'ttl'), 'ttl', 1, 10 ** 9),
    },
    'delegations create',
  );
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'device');
  printObject(io, mode, await call(conn, '/delegate', body, io));
  return 0;
}

const delegationsRevoke = revokeCommand({
  path: '/delegate/revoke',
  positional: 'DELEGATION_ID',
  field: 'delegation_id',
  schema: delegateRevokeRequest,
});

export const DELEGATIONS: CommandGroup = {
  help: HELP.group,
  hint: 'delegations --help',
  commands: {
    list: { help: HELP.list, run: delegationsList },
    create: { help: HELP.create, run: delegationsCreate },
    revoke: { help: HELP.revoke, run: delegationsRevoke },
  },
};
