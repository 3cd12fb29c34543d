/**
 * The `runs` group: the ephemeral runs that exist, seen from outside — list an agent's runs
 * (`--agent`, bridge key; or an agent's own with its device key) and revoke one with its whole
 * subtree. Spawning and running a command as a run is the `run` group (commands/run.ts).
 */
import {
  RUN_LIST_STATUSES,
  runIdField,
  runsListRequest,
  runsRevokeRequest,
} from '@agentpack-identity/protocol';
import {
  AGENT_VALUES,
  agentOrDevice,
  CONNECTION_HELP,
  DEVICE_FLAG_HELP,
  DEVICE_HELP,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions } from '../options.js';
import { LIST_OPTIONS_HELP, PAGE_FLAGS, PAGE_VALUES, runList } from '../paging.js';
import { field, OUTPUT_FLAGS, OUTPUT_HELP } from '../table.js';
import { checked } from '../validate.js';
import { revokeCommand } from '../revoke-command.js';

const STATUSES: readonly string[] = RUN_LIST_STATUSES;

const HELP = {
  group: `usage: ${NAME} runs list (--agent AGENT | --device-key-file FILE)
           [--status active|ended|all] [--root RUN_ID] [--limit N] [--all]
       ${NAME} runs revoke RUN_ID [--device-key-file FILE]

Run "${NAME} runs COMMAND --help" for a command's options. Spawning runs: "${NAME} run --help".
`,
  list: `usage: ${NAME} runs list (--agent AGENT | --device-key-file FILE)
    [--status active|ended|all] [--root RUN_ID] [--limit N] [--cursor C] [--all]

Lists an agent's runs (POST /runs/list).

options:
  --agent AGENT          the agent (as the operator, with the bridge key)
  --status STATUS        active, ended (completed, revoked or expired) or all
  --root RUN_ID          only the tree under this root run
${LIST_OPTIONS_HELP}
${DEVICE_HELP}
  -h, --help             this help
`,
  revoke: `usage: ${NAME} runs revoke RUN_ID [--device-key-file FILE]

Revokes a run and its whole subtree in one call (POST /runs/revoke): with the bridge key, or
the device key (--device-key-file) of the run's agent. Without --device-key-file, the
bridge key. Prints {run_id, revoked: [every run ended]}.

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
${DEVICE_FLAG_HELP}
  -h, --help             this help
`,
} as const;

export const RUN_COLUMNS = [
  field('run_id', 'RUN'),
  field('task'),
  field('status'),
  field('parent_run_id', 'PARENT'),
  field('created_at', 'CREATED'),
  field('expires_at', 'EXPIRES'),
];

async function runsList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...AGENT_VALUES, ...PAGE_VALUES, 'agent', 'status', 'root'],
    flags: [...OUTPUT_FLAGS, ...PAGE_FLAGS],
    refused: REFUSED_CREDENTIALS,
  });
  if (opts.status !== undefined && !STATUSES.includes(opts.status)) {
    throw usage('--status must be active, ended or all');
  }
  const who = agentOrDevice(opts, io);
  const body = {
    ...who.body,
    ...(opts.status === undefined ? {} : { status: opts.status }),
    ...(opts.root === undefined ? {} : { root_run_id: checked(runIdField, opts.root, '--root') }),
  };
  return runList(
    { path: '/runs/list', key: 'runs', columns: RUN_COLUMNS, schema: runsListRequest },
    body,
    opts,
    io,
    who.as,
  );
}

const runsRevoke = revokeCommand({
  path: '/runs/revoke',
  positional: 'RUN_ID',
  field: 'run_id',
  schema: runsRevokeRequest,
});

export const RUNS: CommandGroup = {
  help: HELP.group,
  hint: 'runs --help',
  commands: {
    list: { help: HELP.list, run: runsList },
    revoke: { help: HELP.revoke, run: runsRevoke },
  },
};
