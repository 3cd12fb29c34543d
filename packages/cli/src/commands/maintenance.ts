/**
 * The maintenance groups (`secrets rewrap`, `maintenance prune`): jobs on the service's own
 * store, run by an operator with the same environment as the service. They need the service's
 * code (store adapters, keyring), so they run where the service is installed (this repository,
 * or wherever `agentpack-identity-functions` is); the service is loaded only when such a command
 * runs, so no other command pays for it.
 */
import { CliError, NAME, usage, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions } from '../options.js';

const HELP = {
  secrets: `usage: ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]

Run "${NAME} secrets rewrap --help" for details.
`,
  secretsRewrap: `usage: ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]

Re-wraps the data key of every stored secret version that is not under the current primary
key-encryption key (after a Cloud KMS key rotation), without touching the encrypted values.
Each rewrap is audited. Safe to run twice (the second run rewraps nothing) and resumable.
Opens the same store and keyring as the server from the environment: AGENTPACK_STORE (default
sqlite), AGENTPACK_DATA_DIR, AGENTPACK_KMS_KEY (+ AGENTPACK_KMS_ENDPOINT, AGENTPACK_KMS_INSECURE)
or AGENTPACK_SECRETS_KEK or the data dir's key file. No bridge key is needed. With Cloud KMS,
the credentials also need cloudkms.cryptoKeys.get on the key (to read its primary version).

Prints one line of JSON: {"scanned", "rewrapped", "skipped", "last_id"}. If it stops on an
error, it prints how far it got the same way, the reason on stderr, and exits 1: run it again
with --after LAST_ID to resume (or without, to start over: done versions are skipped).

options:
  --data-dir DIR   the embedded store's directory (default: $AGENTPACK_DATA_DIR, else ./.data)
  --batch N        versions read per batch (default 100, at most 1000)
  --after ID       resume after this version id (a previous run's last_id)
  -h, --help       this help
`,
  maintenance: `usage: ${NAME} maintenance prune [--data-dir DIR]
       ${NAME} maintenance migrate-digests [--data-dir DIR]

Run "${NAME} maintenance COMMAND --help" for details.
`,
  maintenanceMigrateDigests: `usage: ${NAME} maintenance migrate-digests [--data-dir DIR]

Upgrades a store written by an earlier version. It moves the device keys and enrollment codes
stored before keyed digests to their keyed ids (HMAC-SHA-256 under the digest key), without
knowing any key: until then, those keys and codes are refused like unknown ones. It also gives
old device keys, delegations and runs their list key, and old audit events their order key.
Uses AGENTPACK_DIGEST_KEY when set, else the data dir's digest-key file, which it creates (0600)
only while the store holds no keyed row. Each move is audited (digest.migrate). Safe to run
twice (the second run moves nothing) and resumable.

Run it once, at the upgrade: once the service has written keys under keyed digests, rows under
plain digests can only have been written by something else, and they are refused (exit 1),
never moved.
Opens the same store as the server from the environment: AGENTPACK_STORE (default sqlite),
AGENTPACK_DATA_DIR, AGENTPACK_DIGEST_KEY. No bridge key or secrets key is needed.

Prints one line of JSON: {"scanned", "moved", "list_keys", "audit_order_keys"}.

options:
  --data-dir DIR   the embedded store's directory (default: $AGENTPACK_DATA_DIR, else ./.data)
  -h, --help       this help
`,
  maintenancePrune: `usage: ${NAME} maintenance prune [--data-dir DIR]

Deletes what has expired from the service's store: request nonces past their expiry, device
enrollments and runs a day past theirs (until then a run still reads as expired). Audit events
are never deleted, and pruning writes none. The local server also does this at start and every
ten minutes; on Cloud Functions, Firestore's TTL policies do it. Safe to run any time and twice.
Opens the same store as the server from the environment: AGENTPACK_STORE (default sqlite),
AGENTPACK_DATA_DIR. No bridge key or secrets key is needed.

Prints one line of JSON: {"request_nonces", "device_enrollments", "runs"}, how many documents
it deleted from each.

options:
  --data-dir DIR   the embedded store's directory (default: $AGENTPACK_DATA_DIR, else ./.data)
  -h, --help       this help
`,
} as const;

/** What the service's maintenance module offers (functions/src/maintenance.ts). */
interface Maintenance {
  rewrapStore(options: {
    env: CliIo['env'];
    batchSize: number;
    after: string | null;
    now?: () => number;
  }): Promise<unknown>;
  pruneStore(options: { env: CliIo['env']; now?: () => number }): Promise<unknown>;
  migrateDigestsStore(options: { env: CliIo['env']; now?: () => number }): Promise<unknown>;
  MaintenanceError: new (...args: never[]) => Error;
  RewrapStopped: new (...args: never[]) => Error & { summary: { last_id: string | null } };
}

/**
 * Set to true by the bundle of the standalone package (scripts/bundle.mjs, an esbuild define):
 * a device install has no service code and never looks for any.
 */
declare const __AGENTPACK_STANDALONE__: boolean | undefined;

const STANDALONE_REFUSAL =
  "this command works on the service's own store: run it on the service's machine, from the repository (after npm run build)";

/**
 * The service's maintenance entry, by its place in this repository (packages/cli/lib/commands →
 * functions/lib): a path, never a package name that a module folder above an install could
 * answer with planted code.
 */
async function loadMaintenance(): Promise<Maintenance> {
  if (typeof __AGENTPACK_STANDALONE__ !== 'undefined' && __AGENTPACK_STANDALONE__) {
    throw new CliError(STANDALONE_REFUSAL);
  }
  const entry = new URL('../../../../functions/lib/maintenance.js', import.meta.url);
  try {
    return (await import(entry.href)) as Maintenance;
  } catch {
    throw new CliError(STANDALONE_REFUSAL);
  }
}

async function secretsRewrap(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { values: ['data-dir', 'batch', 'after'] });
  const batchText = opts.batch ?? '100';
  if (!/^[0-9]{1,4}$/.test(batchText) || Number(batchText) < 1 || Number(batchText) > 1000) {
    throw usage('--batch must be a whole number from 1 to 1000');
  }
  if (opts.after === '') throw usage('--after is empty');
  const { rewrapStore, MaintenanceError, RewrapStopped } = await loadMaintenance();
  const env =
    opts['data-dir'] === undefined ? io.env : { ...io.env, AGENTPACK_DATA_DIR: opts['data-dir'] };
  try {
    const summary = await rewrapStore({
      env,
      batchSize: Number(batchText),
      after: opts.after ?? null,
      ...(io.now === undefined ? {} : { now: io.now }),
    });
    io.stdout(`${JSON.stringify(summary)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof MaintenanceError) throw new CliError(error.message);
    if (!(error instanceof RewrapStopped)) throw error;
    io.stdout(`${JSON.stringify(error.summary)}\n`);
    const resume =
      error.summary.last_id === null ? '' : `; resume with --after ${error.summary.last_id}`;
    throw new CliError(`${error.message}${resume}`);
  }
}

export const SECRETS: CommandGroup = {
  help: HELP.secrets,
  hint: 'secrets rewrap',
  commands: { rewrap: { help: HELP.secretsRewrap, run: secretsRewrap } },
};

/** A maintenance job over the configured store that prints its summary as one JSON line. */
function storeJob(
  job: (m: Maintenance) => Maintenance['pruneStore'],
): (args: readonly string[], io: CliIo) => Promise<number> {
  return async (args, io) => {
    const opts = parseOptions(args, { values: ['data-dir'] });
    const maintenance = await loadMaintenance();
    const env =
      opts['data-dir'] === undefined ? io.env : { ...io.env, AGENTPACK_DATA_DIR: opts['data-dir'] };
    try {
      const summary = await job(maintenance)({
        env,
        ...(io.now === undefined ? {} : { now: io.now }),
      });
      io.stdout(`${JSON.stringify(summary)}\n`);
      return 0;
    } catch (error) {
      if (error instanceof maintenance.MaintenanceError) throw new CliError(error.message);
      throw error;
    }
  };
}

export const MAINTENANCE: CommandGroup = {
  help: HELP.maintenance,
  hint: 'maintenance prune',
  commands: {
    prune: { help: HELP.maintenancePrune, run: storeJob((m) => m.pruneStore) },
    'migrate-digests': {
      help: HELP.maintenanceMigrateDigests,
      run: storeJob((m) => m.migrateDigestsStore),
    },
  },
};
