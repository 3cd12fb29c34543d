/**
 * The `roles` group: what a trusted issuer's token is exchanged for (bridge key) — a role names
 * the issuer, the audiences its tokens must carry, the claims they must bind, and the agent,
 * scope and longest life of the root run an exchange makes. Put (create or replace), get,
 * list (paged), delete. Issuers: commands/issuers.ts; the exchange: commands/auth.ts.
 */
import {
  rolesDeleteRequest,
  rolesGetRequest,
  rolesListRequest,
  rolesPutRequest,
} from '@agentpack-identity/protocol';
import {
  call,
  connect,
  CONNECTION_HELP,
  CONNECTION_VALUES,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { intOption, listOption, parseOptions, required } from '../options.js';
import { LIST_OPTIONS_HELP, PAGE_FLAGS, PAGE_VALUES, runList } from '../paging.js';
import { field, OUTPUT_FLAGS, OUTPUT_HELP, outputMode, printObject } from '../table.js';
import { checked } from '../validate.js';

const HELP = {
  group: `usage: ${NAME} roles put ROLE --issuer ISSUER --audience AUD[,AUD...]
           --bind CLAIM=VALUE [--bind ...] --agent AGENT --scope RPC[,RPC...] --ttl SECONDS
       ${NAME} roles get ROLE
       ${NAME} roles list [--limit N] [--all]
       ${NAME} roles delete ROLE

A role maps a trusted issuer's tokens ("${NAME} issuers --help") to root runs of one agent:
a workload presents such a token to "${NAME} auth exchange --role ROLE".
Run "${NAME} roles COMMAND --help" for a command's options.
`,
  put: `usage: ${NAME} roles put ROLE --issuer ISSUER --audience AUD[,AUD...]
    --bind CLAIM=VALUE [--bind CLAIM=VALUE ...] --agent AGENT --scope RPC[,RPC...]
    --ttl SECONDS

Creates or replaces the role ROLE (POST /roles/put, bridge key) and prints it. A token is
exchanged under it when it is signed by a key of ISSUER (trusted first with "issuers put"),
its "iss" is exactly ISSUER, its "aud" is one of the audiences, it has not expired, and every
bound claim matches; the exchange then makes a root run of AGENT with the scope, for at most
SECONDS. Replacing a role ends the runs made under it before (they were made by other rules).

options:
  --issuer ISSUER        the trusted issuer whose tokens this role takes
  --audience LIST        comma-separated audiences; the token's "aud" must be one of them
                         (1 to 16)
  --bind CLAIM=VALUE     a claim the token must have with this value; "*" in VALUE matches
                         any run of characters (--bind sub=system:serviceaccount:ns:*), every
                         other character itself, and VALUE never starts with "*". Repeat for
                         more claims (all must match); the same CLAIM repeated gives several
                         accepted values (any may match). At least one claim; iss, aud, exp,
                         nbf and iat cannot be bound. On GitHub Actions and Google, which sign
                         for everyone, a bound claim must fix the tenant (the service says how)
  --agent AGENT          the agent the runs act for
  --scope LIST           comma-separated RPCs of the runs, each optionally narrowed to one
                         resource, e.g. secrets/get:deploy_key,runs/spawn
  --ttl SECONDS          the runs' longest life (at most runs.max_ttl_seconds, default 900)
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  get: `usage: ${NAME} roles get ROLE

Prints one role (POST /roles/get, bridge key). Unknown: exit 3.

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  list: `usage: ${NAME} roles list [--limit N] [--cursor C] [--all]

Lists the roles by name (POST /roles/list, bridge key).

options:
${LIST_OPTIONS_HELP}
  -h, --help             this help
`,
  delete: `usage: ${NAME} roles delete ROLE

Deletes the role ROLE (POST /roles/delete, bridge key): no token is exchanged under it from
now on, and the runs made under it end. Unknown: exit 3. Prints {role, deleted}.

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
} as const;

export const ROLE_COLUMNS = [
  field('role'),
  field('issuer'),
  field('agent_id', 'AGENT'),
  field('audiences'),
  field('bound_claims', 'BOUND'),
  field('scope'),
  field('ttl_seconds', 'TTL'),
  field('updated_at', 'UPDATED'),
];

/** The longest `--ttl` the command line takes; the service's own ceiling is lower. */
const MAX_TTL_ARG = 10 ** 9;

const single = { values: CONNECTION_VALUES, flags: OUTPUT_FLAGS, refused: REFUSED_CREDENTIALS };

/**
 * The bound claims of `--bind CLAIM=VALUE` options: a claim given once binds a value, given
 * several times a list of accepted values (repeats of one value kept once). The names and
 * values are checked by the protocol's schema after this.
 */
export function boundClaims(binds: readonly string[]): Record<string, string | string[]> {
  if (binds.length === 0) {
    throw usage('--bind CLAIM=VALUE is required (a role binds at least one claim)');
  }
  const claims = new Map<string, string[]>();
  for (const bind of binds) {
    const eq = bind.indexOf('=');
    if (eq <= 0) throw usage('--bind must be CLAIM=VALUE (e.g. --bind sub=repo:acme/app:*)');
    const name = bind.slice(0, eq);
    const value = bind.slice(eq + 1);
    if (value === '') throw usage('--bind CLAIM=VALUE: the value is empty');
    const values = claims.get(name) ?? [];
    if (!values.includes(value)) values.push(value);
    claims.set(name, values);
  }
  return Object.fromEntries(
    [...claims].map(([name, values]) => [name, values.length === 1 ? values[0]! : values]),
  );
}

async function rolesPut(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    ...single,
    values: [...CONNECTION_VALUES, 'issuer', 'audience', 'agent', 'scope', 'ttl'],
    repeatable: ['bind'],
    positionals: ['ROLE'],
  });
  const body = checked(
    rolesPutRequest,
    {
      role: opts._[0],
      issuer: required(opts.issuer, 'issuer'),
      audiences: listOption(required(opts.audience, 'audience'), 'audience'),
      bound_claims: boundClaims(opts.bind),
      agent_id: required(opts.agent, 'agent'),
      scope: listOption(required(opts.scope, 'scope'), 'scope'),
      ttl_seconds: intOption(required(opts.ttl, 'ttl'), 'ttl', 1, MAX_TTL_ARG),
    },
    'roles put',
  );
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  printObject(io, mode, await call(conn, '/roles/put', body, io));
  return 0;
}

/** A command on one role: ROLE checked by the route's schema, the bridge key, the answer. */
function onRole(path: string, schema: typeof rolesGetRequest | typeof rolesDeleteRequest) {
  return async (args: readonly string[], io: CliIo): Promise<number> => {
    const opts = parseOptions(args, { ...single, positionals: ['ROLE'] });
    const body = checked(schema, { role: opts._[0] }, 'ROLE');
    const mode = outputMode(opts, io);
    const conn = connect(opts, io, 'bridge');
    printObject(io, mode, await call(conn, path, body, io));
    return 0;
  };
}

async function rolesList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...CONNECTION_VALUES, ...PAGE_VALUES],
    flags: [...OUTPUT_FLAGS, ...PAGE_FLAGS],
    refused: REFUSED_CREDENTIALS,
  });
  return runList(
    { path: '/roles/list', key: 'roles', columns: ROLE_COLUMNS, schema: rolesListRequest },
    {},
    opts,
    io,
  );
}

export const ROLES: CommandGroup = {
  help: HELP.group,
  hint: 'roles --help',
  commands: {
    put: { help: HELP.put, run: rolesPut },
    get: { help: HELP.get, run: onRole('/roles/get', rolesGetRequest) },
    list: { help: HELP.list, run: rolesList },
    delete: { help: HELP.delete, run: onRole('/roles/delete', rolesDeleteRequest) },
  },
};
