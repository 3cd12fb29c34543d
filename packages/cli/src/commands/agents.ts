/**
 * The `agents` group: the operator's view and control of agents, with the bridge key —
 * list (paged), create, get, disable, enable, and retire (the end of an agent: asks for the id
 * twice, takes as long as the agent is large, and is retried when interrupted, since the
 * service resumes it).
 */
import {
  agentIdField,
  agentsCreateRequest,
  agentsListRequest,
  agentsRetireRequest,
} from '@agentpack-identity/protocol';
import {
  call,
  connect,
  CONNECTION_HELP,
  CONNECTION_VALUES,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { CliError, NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions, required } from '../options.js';
import { LIST_OPTIONS_HELP, PAGE_FLAGS, PAGE_VALUES, progress, runList } from '../paging.js';
import { field, OUTPUT_FLAGS, OUTPUT_HELP, outputMode, printObject } from '../table.js';
import { checked } from '../validate.js';

/** A retire of a large agent runs long: its own deadline, and a few resumptions. */
const RETIRE_TIMEOUT_MS = 120_000;
const RETIRE_ATTEMPTS = 3;

const HELP = {
  group: `usage: ${NAME} agents list [--disabled | --enabled] [--limit N] [--all]
       ${NAME} agents create --display-name NAME [--agent-id ID]
       ${NAME} agents get AGENT_ID
       ${NAME} agents disable AGENT_ID
       ${NAME} agents enable AGENT_ID
       ${NAME} agents retire AGENT_ID --confirm AGENT_ID

Run "${NAME} agents COMMAND --help" for a command's options.
`,
  list: `usage: ${NAME} agents list [--disabled | --enabled] [--limit N] [--cursor C] [--all]

Lists agents by agent_id (POST /agents/list, bridge key).

options:
  --disabled             only disabled agents (retired ones are disabled too)
  --enabled              only enabled agents
${LIST_OPTIONS_HELP}
  -h, --help             this help
`,
  create: `usage: ${NAME} agents create --display-name NAME [--agent-id ID]

Creates an agent (POST /agents/create, bridge key) and prints it. Without --agent-id the
service picks the id. An id that exists, or ever existed (a retired agent's), is refused.

options:
  --display-name NAME    what people call it (1-200 visible characters)
  --agent-id ID          its id: ^[a-z0-9][a-z0-9_-]{2,62}$
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  get: `usage: ${NAME} agents get AGENT_ID

Prints one agent (POST /agents/get, bridge key). Unknown: exit 3.

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  toggle: (verb: 'disable' | 'enable') => `usage: ${NAME} agents ${verb} AGENT_ID

${
  verb === 'disable'
    ? `Disables an agent (POST /agents/disable, bridge key): from the next request on, nothing acts
for it — its device keys, runs and delegations from and to it stop working. Undo with
"agents enable".`
    : `Enables a disabled agent again (POST /agents/enable, bridge key). A retired agent cannot be
enabled (the service answers 409).`
}

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  retire: `usage: ${NAME} agents retire AGENT_ID --confirm AGENT_ID

Ends an agent for good (POST /agents/retire, bridge key): every device key, enrollment,
delegation (from and to it) and run is revoked and every secret version destroyed (the
ciphertext is gone); the agent stays, disabled and retired, with its audit. It cannot be
undone, and the id can never be created again: --confirm must repeat the id.
A large agent takes a while: the call waits up to ${RETIRE_TIMEOUT_MS / 1000} s and is sent
again (the service resumes where it stopped) up to ${RETIRE_ATTEMPTS} times if it times out or
the service is unavailable. On a terminal, stderr shows it is under way.
Prints {agent_id, retired_at, revoked: {device_keys, delegations, runs}, destroyed_versions}.

options:
  --confirm AGENT_ID     the same id again (required)
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
} as const;

export const AGENT_COLUMNS = [
  field('agent_id', 'AGENT'),
  field('display_name', 'NAME'),
  field('disabled'),
  field('created_at', 'CREATED'),
  field('retired_at', 'RETIRED'),
];

const single = { values: CONNECTION_VALUES, flags: OUTPUT_FLAGS, refused: REFUSED_CREDENTIALS };

function agentId(value: string): string {
  return checked(agentIdField, value, 'AGENT_ID');
}

async function agentsList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...CONNECTION_VALUES, ...PAGE_VALUES],
    flags: [...OUTPUT_FLAGS, ...PAGE_FLAGS, 'disabled', 'enabled'],
    refused: REFUSED_CREDENTIALS,
  });
  if (opts.disabled === true && opts.enabled === true) {
    throw usage('give --disabled or --enabled, not both');
  }
  const body =
    opts.disabled === true ? { disabled: true } : opts.enabled === true ? { disabled: false } : {};
  return runList(
    { path: '/agents/list', key: 'agents', columns: AGENT_COLUMNS, schema: agentsListRequest },
    body,
    opts,
    io,
  );
}

async function agentsCreate(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    ...single,
    values: [...CONNECTION_VALUES, 'display-name', 'agent-id'],
  });
  const body = checked(
    agentsCreateRequest,
    {
      display_name: required(opts['display-name'], 'display-name'),
      ...(opts['agent-id'] === undefined ? {} : { agent_id: opts['agent-id'] }),
    },
    'agents create',
  );
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  printObject(io, mode, await call(conn, '/agents/create', body, io));
  return 0;
}

/** A command on one agent: AGENT_ID, the bridge key, the answer printed. */
function onAgent(path: string) {
  return async (args: readonly string[], io: CliIo): Promise<number> => {
    const opts = parseOptions(args, { ...single, positionals: ['AGENT_ID'] });
    const id = agentId(opts._[0]!);
    const mode = outputMode(opts, io);
    const conn = connect(opts, io, 'bridge');
    printObject(io, mode, await call(conn, path, { agent_id: id }, io));
    return 0;
  };
}

/** True for a failure worth sending the retire again for: a timeout, 5xx, no connection. */
const resumable = (error: unknown) =>
  error instanceof CliError &&
  /^\/agents\/retire: (cannot reach|HTTP 5\d\d|HTTP 429)/.test(error.message);

async function agentsRetire(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    ...single,
    values: [...CONNECTION_VALUES, 'confirm'],
    positionals: ['AGENT_ID'],
  });
  const id = agentId(opts._[0]!);
  if (opts.confirm === undefined) {
    throw usage(`retiring cannot be undone: repeat the id as --confirm ${id}`);
  }
  if (opts.confirm !== id) throw usage('--confirm does not match AGENT_ID: nothing was retired');
  const body = checked(
    agentsRetireRequest,
    { agent_id: id, confirm: opts.confirm },
    'agents retire',
  );
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  const bar = progress(io);
  const started = Date.now();
  let note = '';
  const show = () =>
    bar.show(`retiring ${id}${note}... ${Math.round((Date.now() - started) / 1000)} s`);
  // On a terminal, the line ticks while the service walks the agent's keys, runs and secrets.
  const ticker = io.tty?.stderr === true ? setInterval(show, 1000) : undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) note = ` (resuming, attempt ${attempt})`;
      show();
      try {
        const answer = await call(conn, '/agents/retire', body, io, {
          timeoutMs: RETIRE_TIMEOUT_MS,
        });
        bar.done();
        printObject(io, mode, answer);
        return 0;
      } catch (error) {
        if (attempt >= RETIRE_ATTEMPTS || !resumable(error)) throw error;
      }
    }
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    bar.done();
  }
}

export const AGENTS: CommandGroup = {
  help: HELP.group,
  hint: 'agents --help',
  commands: {
    list: { help: HELP.list, run: agentsList },
    create: { help: HELP.create, run: agentsCreate },
    get: { help: HELP.get, run: onAgent('/agents/get') },
    disable: { help: HELP.toggle('disable'), run: onAgent('/agents/disable') },
    enable: { help: HELP.toggle('enable'), run: onAgent('/agents/enable') },
    retire: { help: HELP.retire, run: agentsRetire },
  },
};
