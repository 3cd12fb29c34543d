/**
 * The `secrets` group. Operators provision, agents read: with the bridge key an operator puts,
 * lists, inspects, deletes, undeletes and destroys an agent's secrets (`--agent AGENT`) or the
 * project's shared ones (`--shared`), and grants shared ones to agents — and never reads a
 * value (the service refuses the bridge key on /secrets/get). An agent, with its device key
 * (`--device-key-file`), does the same to its own secrets and reads them with `secrets get`.
 * A value goes in on stdin or from a file, never in argv, and comes out on stdout only.
 * `secrets rewrap` (commands/maintenance.ts) is a job on the service's store.
 */
import {
  agentIdField,
  secretNameField,
  secretsGetRequest,
  secretsGrantRequest,
  secretsPutRequest,
  SHARED_OWNER,
} from '@agentpack-identity/protocol';
import {
  AGENT_VALUES,
  call,
  connect,
  CONNECTION_HELP,
  CONNECTION_VALUES,
  DEVICE_HELP,
  deviceKeyConfigured,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { CliError, NAME, usage, type CliIo, type Command, type CommandGroup } from '../io.js';
import { intOption, listOption, parseOptions, required } from '../options.js';
import { openSealedValue, readSecretValue, REFUSED_VALUE, VALUE_HELP } from '../secret-value.js';
import {
  field,
  OUTPUT_FLAGS,
  OUTPUT_HELP,
  outputMode,
  printList,
  printObject,
  renderObject,
  renderTable,
} from '../table.js';
import { checked } from '../validate.js';
import { SECRETS as STORE_JOBS } from './maintenance.js';

/** The reserved owner of the project's shared secrets. */
const SHARED = SHARED_OWNER;

const OWNER_HELP = `  --agent AGENT          the agent's secrets (as the operator, with the bridge key)
  --shared               the project's shared secrets (as the operator, with the bridge key)
${DEVICE_HELP}
                         (without --agent or --shared: the agent's own secrets)`;

const HELP = {
  group: `usage: ${NAME} secrets put NAME (--agent AGENT | --shared | --device-key-file FILE)
           [--value-file FILE] [--cas N]          (the value on stdin by default)
       ${NAME} secrets get NAME --device-key-file FILE [--version N] [--shared]
       ${NAME} secrets list (--agent AGENT | --shared | --device-key-file FILE)
       ${NAME} secrets metadata NAME (--agent AGENT | --shared | --device-key-file FILE)
       ${NAME} secrets delete|undelete NAME (--agent ... ) [--versions N,...]
       ${NAME} secrets destroy NAME (--agent ... ) --versions N,...
       ${NAME} secrets grant|ungrant NAME --agents AGENT,...
       ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]

Run "${NAME} secrets COMMAND --help" for a command's options.
`,
  put: `usage: ${NAME} secrets put NAME (--agent AGENT | --shared | --device-key-file FILE)
    [--value-file FILE] [--cas N] [--brokered] [--keep-newline]

Stores a new version of the secret NAME (POST /secrets/put) and prints {name, version,
created_at} — never the value. The value is read from stdin (on a terminal, typed without
echo) or from --value-file; it never goes in the command line, where other users can see it.
  printf %s "$KEY" | ${NAME} secrets put openai_key --agent agent-1
  ${NAME} secrets put openai_key --shared --value-file ./openai.txt

options:
${OWNER_HELP}
${VALUE_HELP}
  --cas N                only if the current version is N (0: only if there is none);
                         else the service refuses (409) and nothing is written
  --brokered             mark it brokered: readable only sealed, by an enrolled device
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  get: `usage: ${NAME} secrets get NAME --device-key-file FILE [--version N] [--shared]

Prints the value of the secret NAME (POST /secrets/get) on stdout, as is (a newline after it on
a terminal only); --json prints the whole answer. This needs an agent's credential: the bridge
key never reads a value (operators provision, agents read). When FILE is the device-key of a
"device enroll" directory, the request is signed and the value asked for sealed to the device
and opened here. A value is never put in an error message.

options:
  --version N            that version (default: the current one)
  --shared               the shared secret NAME granted to the agent
  --json                 print the answer as JSON (with the value)
${CONNECTION_HELP}
${DEVICE_HELP}
  -h, --help             this help
`,
  list: `usage: ${NAME} secrets list (--agent AGENT | --shared | --device-key-file FILE)

Lists secrets (POST /secrets/list): names and versions, never a value.

options:
${OWNER_HELP}
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  metadata: `usage: ${NAME} secrets metadata NAME (--agent AGENT | --shared | --device-key-file FILE)

Prints a secret's versions (POST /secrets/metadata): when each was made, deleted or
destroyed; never a value.

options:
${OWNER_HELP}
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  change: (
    verb: string,
    what: string,
  ) => `usage: ${NAME} secrets ${verb} NAME (--agent AGENT | --shared | --device-key-file FILE)
    ${verb === 'destroy' ? '--versions N,...' : '[--versions N,...]'}

${what}

options:
${OWNER_HELP}
  --versions N,...       the versions${verb === 'destroy' ? ' (required)' : ' (default: the current one)'}
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  grant: (
    verb: 'grant' | 'ungrant',
  ) => `usage: ${NAME} secrets ${verb} NAME --agents AGENT[,AGENT...]

${
  verb === 'grant'
    ? `Lets these agents read the shared secret NAME (POST /secrets/grant, bridge key), as
"secrets get NAME --shared" or the ref agentpack.secret://_shared/NAME.`
    : `Takes back these agents' right to read the shared secret NAME (POST /secrets/ungrant,
bridge key).`
} Prints {name, readers}.

options:
  --agents LIST          comma-separated agent ids
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
} as const;

const SECRET_COLUMNS = [
  field('name'),
  field('current_version', 'VERSION'),
  field('brokered'),
  field('created_at', 'CREATED'),
  field('updated_at', 'UPDATED'),
];

const VERSION_COLUMNS = [
  field('version'),
  field('created_at', 'CREATED'),
  field('deleted_at', 'DELETED'),
  field('destroyed'),
];

interface OwnerOptions {
  agent?: string;
  shared?: true;
  'device-key-file'?: string;
}

/** The owner's part of the body and the credential: bridge for --agent/--shared, else device. */
function owner(opts: OwnerOptions & { profile?: string }, io: CliIo) {
  const given = [
    opts.agent !== undefined,
    opts.shared === true,
    opts['device-key-file'] !== undefined,
  ];
  if (given.filter(Boolean).length > 1) {
    throw usage('give one of --agent, --shared or --device-key-file');
  }
  if (opts.shared === true) return { body: { agent_id: SHARED }, as: 'bridge' as const };
  if (opts.agent !== undefined) {
    return {
      body: { agent_id: checked(agentIdField, opts.agent, '--agent') },
      as: 'bridge' as const,
    };
  }
  if (!deviceKeyConfigured(opts, io)) {
    throw usage(
      'give --agent AGENT or --shared (as the operator), or --device-key-file FILE (as the agent)',
    );
  }
  return { body: {}, as: 'device' as const };
}

const OWNER_SPEC = {
  values: [...AGENT_VALUES, 'agent'],
  flags: [...OUTPUT_FLAGS, 'shared'],
  refused: { ...REFUSED_CREDENTIALS, ...REFUSED_VALUE },
} as const;

const secretName = (value: string) => checked(secretNameField, value, 'NAME');

function versionsOption(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  return listOption(value, 'versions').map((v) => intOption(v, 'versions', 1, 2 ** 31)!);
}

async function secretsPut(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    ...OWNER_SPEC,
    values: [...OWNER_SPEC.values, 'value-file', 'cas'],
    flags: [...OWNER_SPEC.flags, 'brokered', 'keep-newline'],
    positionals: ['NAME'],
  });
  const name = secretName(opts._[0]!);
  const who = owner(opts, io);
  const cas = intOption(opts.cas, 'cas', 0, 2 ** 31);
  const mode = outputMode(opts, io);
  // Connect (and so read every credential) before the value is asked for.
  const conn = connect(opts, io, who.as);
  const value = await readSecretValue(opts, io, name);
  checked(secretsPutRequest, { name, value, ...(cas === undefined ? {} : { cas }) }, 'secrets put');
  const body = {
    ...who.body,
    name,
    value,
    ...(cas === undefined ? {} : { cas }),
    ...(opts.brokered === true ? { brokered: true } : {}),
  };
  const answer = await call(conn, '/secrets/put', body, io, { redact: value });
  // The service never echoes the value; if it ever did, it is not printed.
  delete answer['value'];
  printObject(io, mode, answer);
  return 0;
}

async function secretsGet(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...AGENT_VALUES, 'version'],
    flags: ['json', 'shared'],
    positionals: ['NAME'],
    refused: {
      ...REFUSED_CREDENTIALS,
      agent: 'the bridge key never reads a value: use the agent’s --device-key-file',
    },
  });
  const name = secretName(opts._[0]!);
  const version = intOption(opts.version, 'version', 1, 2 ** 31);
  const conn = connect(opts, io, 'device');
  const device = conn.credential.kind === 'device' ? conn.credential.device : null;
  const seal = device?.deviceDir !== null && device?.deviceDir !== undefined;
  const body = checked(
    secretsGetRequest,
    {
      name,
      ...(version === undefined ? {} : { version }),
      ...(opts.shared === true ? { owner: SHARED } : {}),
      ...(seal ? { seal: true } : {}),
    },
    'secrets get',
  );
  const answer = await call(conn, '/secrets/get', body, io);
  if (seal && Object.hasOwn(answer, 'sealed')) {
    answer['value'] = openSealedValue(answer['sealed'], device!.deviceDir!);
    delete answer['sealed'];
  }
  if (opts.json === true) {
    io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    return 0;
  }
  const value = answer['value'];
  if (typeof value !== 'string') throw new CliError('/secrets/get: the answer has no value');
  io.stdout(io.tty?.stdout === true ? `${value}\n` : value);
  return 0;
}

async function secretsList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, OWNER_SPEC);
  const who = owner(opts, io);
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, who.as);
  const answer = await call(conn, '/secrets/list', who.body, io);
  const list = answer['secrets'];
  if (!Array.isArray(list)) throw new CliError('/secrets/list: the answer has no secrets list');
  if (mode === 'json') io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
  else printList(io, mode, 'secrets', list as Record<string, unknown>[], SECRET_COLUMNS, null);
  return 0;
}

async function secretsMetadata(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { ...OWNER_SPEC, positionals: ['NAME'] });
  const name = secretName(opts._[0]!);
  const who = owner(opts, io);
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, who.as);
  const answer = await call(conn, '/secrets/metadata', { ...who.body, name }, io);
  if (mode === 'json') {
    printObject(io, mode, answer);
    return 0;
  }
  const { versions, ...rest } = answer;
  io.stdout(`${renderObject(rest)}\n`);
  if (Array.isArray(versions)) {
    io.stdout(`\n${renderTable(versions as Record<string, unknown>[], VERSION_COLUMNS)}\n`);
  }
  return 0;
}

/** delete / undelete / destroy: NAME, the owner, --versions. */
function change(path: string, versionsRequired: boolean): Command['run'] {
  return async (args, io) => {
    const opts = parseOptions(args, {
      ...OWNER_SPEC,
      values: [...OWNER_SPEC.values, 'versions'],
      positionals: ['NAME'],
    });
    const name = secretName(opts._[0]!);
    const who = owner(opts, io);
    const versions = versionsOption(
      versionsRequired ? required(opts.versions, 'versions') : opts.versions,
    );
    const mode = outputMode(opts, io);
    const conn = connect(opts, io, who.as);
    const body = { ...who.body, name, ...(versions === undefined ? {} : { versions }) };
    printObject(io, mode, await call(conn, path, body, io));
    return 0;
  };
}

function grant(path: string): Command['run'] {
  return async (args, io) => {
    const opts = parseOptions(args, {
      values: [...CONNECTION_VALUES, 'agents'],
      flags: OUTPUT_FLAGS,
      positionals: ['NAME'],
      refused: REFUSED_CREDENTIALS,
    });
    const name = secretName(opts._[0]!);
    const agents = listOption(required(opts.agents, 'agents'), 'agents');
    checked(secretsGrantRequest, { name, agents }, '--agents');
    const mode = outputMode(opts, io);
    const conn = connect(opts, io, 'bridge');
    printObject(io, mode, await call(conn, path, { name, agents }, io));
    return 0;
  };
}

export const SECRETS: CommandGroup = {
  help: HELP.group,
  hint: 'secrets --help',
  commands: {
    put: { help: HELP.put, run: secretsPut },
    get: { help: HELP.get, run: secretsGet },
    list: { help: HELP.list, run: secretsList },
    metadata: { help: HELP.metadata, run: secretsMetadata },
    delete: {
      help: HELP.change(
        'delete',
        'Soft-deletes versions (POST /secrets/delete): they read as not found until undeleted.',
      ),
      run: change('/secrets/delete', false),
    },
    undelete: {
      help: HELP.change('undelete', 'Brings soft-deleted versions back (POST /secrets/undelete).'),
      run: change('/secrets/undelete', false),
    },
    destroy: {
      help: HELP.change(
        'destroy',
        'Destroys versions for good (POST /secrets/destroy): the ciphertext is gone.',
      ),
      run: change('/secrets/destroy', true),
    },
    grant: { help: HELP.grant('grant'), run: grant('/secrets/grant') },
    ungrant: { help: HELP.grant('ungrant'), run: grant('/secrets/ungrant') },
    ...STORE_JOBS.commands,
  },
};
