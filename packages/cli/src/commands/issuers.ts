/**
 * The `issuers` group: the token issuers whose workload tokens `/auth/exchange` trusts (bridge
 * key) — put one (its keys pinned from a JWKS file, or discovered by the service over HTTPS
 * from the issuer's OIDC configuration), list them (paged), delete one (refused by the service
 * while a role still names it). Roles map an issuer's tokens to runs: commands/roles.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import {
  issuersDeleteRequest,
  issuersListRequest,
  issuersPutRequest,
} from '@agentpack-identity/protocol';
import {
  call,
  connect,
  CONNECTION_HELP,
  CONNECTION_VALUES,
  REFUSED_CREDENTIALS,
} from '../connection.js';
import { CliError, NAME, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions } from '../options.js';
import { LIST_OPTIONS_HELP, PAGE_FLAGS, PAGE_VALUES, runList } from '../paging.js';
import { field, OUTPUT_FLAGS, OUTPUT_HELP, outputMode, printObject } from '../table.js';
import { checked } from '../validate.js';

/** The most a JWKS file may be: 20 keys of RSA-4096 fit many times over. */
const MAX_JWKS_BYTES = 256 * 1024;

/** JWK members only a private (or secret) key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

const HELP = {
  group: `usage: ${NAME} issuers put ISSUER [--jwks-file FILE]
       ${NAME} issuers list [--limit N] [--all]
       ${NAME} issuers delete ISSUER

The issuers whose tokens workloads may exchange for runs ("${NAME} auth exchange"); which
tokens, for which agent, is a role's ("${NAME} roles --help").
Run "${NAME} issuers COMMAND --help" for a command's options.
`,
  put: `usage: ${NAME} issuers put ISSUER [--jwks-file FILE]

Trusts the token issuer ISSUER (POST /issuers/put, bridge key), replacing an earlier put of
it, and prints it. ISSUER is the exact "iss" of its tokens: a Kubernetes cluster's issuer
URL, https://token.actions.githubusercontent.com, https://accounts.google.com, ...

Without --jwks-file, the service discovers the keys itself: ISSUER must be an https URL, and
the keys come from ISSUER/.well-known/openid-configuration's jwks_uri (cached, fetched again
on an unknown kid). With --jwks-file, the keys in FILE are pinned instead (no fetch ever; for
an issuer the service cannot reach, such as a private cluster's): a JWKS {"keys": [...]} of
1 to 20 public keys (RS256, ES256 or EdDSA). A private key in FILE is refused here, before
anything is sent.

options:
  --jwks-file FILE       pin the public keys of FILE (JSON; "kubectl get --raw
                         /openid/v1/jwks" prints a cluster's)
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
  list: `usage: ${NAME} issuers list [--limit N] [--cursor C] [--all]

Lists the trusted issuers by identifier (POST /issuers/list, bridge key): KEYS is the number
of pinned keys, or "discovered".

options:
${LIST_OPTIONS_HELP}
  -h, --help             this help
`,
  delete: `usage: ${NAME} issuers delete ISSUER

Stops trusting ISSUER (POST /issuers/delete, bridge key). Refused (exit 1) while a role still
names it: delete or change the role first. Unknown: exit 3. Prints {issuer, deleted}.

options:
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
} as const;

export const ISSUER_COLUMNS = [
  field('issuer'),
  {
    header: 'KEYS',
    get: (row: Record<string, unknown>) => {
      const jwks = row['jwks'] as { keys?: unknown } | null | undefined;
      return Array.isArray(jwks?.keys) ? `${jwks.keys.length} pinned` : 'discovered';
    },
  },
  field('created_at', 'CREATED'),
  field('updated_at', 'UPDATED'),
];

const single = { values: CONNECTION_VALUES, flags: OUTPUT_FLAGS, refused: REFUSED_CREDENTIALS };

/** The JWKS of `file`: JSON, `{keys: [...]}`, public keys only. Never echoes the file. */
function readJwksFile(file: string): unknown {
  let text: string;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new CliError(`--jwks-file: ${file} is not a file`);
    if (stat.size > MAX_JWKS_BYTES) throw new CliError(`--jwks-file: ${file} is too large`);
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(`--jwks-file: cannot read ${file} (${code})`);
  }
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    throw new CliError(`--jwks-file: ${file} is not JSON`);
  }
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray(keys)) {
    throw new CliError(`--jwks-file: ${file} is not a JWKS (an object with a "keys" array)`);
  }
  // Policy: a private key is never sent anywhere. The service refuses one too, but by then it
  // has crossed the network and may sit in a proxy's log; a JWKS to pin holds public keys only.
  for (const [index, key] of keys.entries()) {
    if (typeof key === 'object' && key !== null) {
      const found = PRIVATE_MEMBERS.find((m) => Object.hasOwn(key, m));
      if (found !== undefined) {
        throw new CliError(
          `--jwks-file: key #${index + 1} of ${file} is a private key ("${found}"): pin only public keys; nothing was sent`,
        );
      }
    }
  }
  return jwks;
}

async function issuersPut(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    ...single,
    values: [...CONNECTION_VALUES, 'jwks-file'],
    positionals: ['ISSUER'],
  });
  const file = opts['jwks-file'];
  const body = checked(
    issuersPutRequest,
    { issuer: opts._[0], ...(file === undefined ? {} : { jwks: readJwksFile(file) }) },
    'issuers put',
  );
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  printObject(io, mode, await call(conn, '/issuers/put', body, io));
  return 0;
}

async function issuersList(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...CONNECTION_VALUES, ...PAGE_VALUES],
    flags: [...OUTPUT_FLAGS, ...PAGE_FLAGS],
    refused: REFUSED_CREDENTIALS,
  });
  return runList(
    { path: '/issuers/list', key: 'issuers', columns: ISSUER_COLUMNS, schema: issuersListRequest },
    {},
    opts,
    io,
  );
}

async function issuersDelete(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { ...single, positionals: ['ISSUER'] });
  const body = checked(issuersDeleteRequest, { issuer: opts._[0] }, 'ISSUER');
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  printObject(io, mode, await call(conn, '/issuers/delete', body, io));
  return 0;
}

export const ISSUERS: CommandGroup = {
  help: HELP.group,
  hint: 'issuers --help',
  commands: {
    put: { help: HELP.put, run: issuersPut },
    list: { help: HELP.list, run: issuersList },
    delete: { help: HELP.delete, run: issuersDelete },
  },
};
