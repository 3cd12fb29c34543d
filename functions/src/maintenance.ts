/**
 * Maintenance jobs run by an operator outside any request, with the same environment as the
 * service (store, keyring): the CLI's `secrets rewrap` calls {@link rewrapStore}, `maintenance
 * prune` {@link pruneStore}. A second composition root beside `app.ts`: it opens the configured
 * store (and keyring), runs the job and closes them.
 */
import { existsSync } from 'node:fs';
import { openDigestKey, openKeyring, openStore, sqliteFile } from './app.js';
import { loadStorageConfig, type Env, type StorageConfig } from './config/config.js';
import {
  digestState,
  migrateDigests,
  PlainRowsRefused,
  type DigestMigration,
} from './core/digest-migration.js';
import { pruneExpired, type PruneCounts } from './core/prune.js';
import { rewrapSecrets, RewrapStopped, type RewrapSummary } from './core/rewrap.js';
import { systemClock } from './ports/clock.js';
import type { Store } from './ports/store.js';

/** A maintenance job refused before it started (bad configuration, no store): a one-line reason. */
export class MaintenanceError extends Error {}

export { RewrapStopped };

/**
 * Re-wraps the data key of every stored secret version that is not under the current primary
 * key-encryption key. Throws {@link MaintenanceError} when the configuration is bad or no store
 * exists, and {@link RewrapStopped} (with how far it got) when it stops on an error.
 */
export async function rewrapStore(options: {
  env: Env;
  batchSize: number;
  after: string | null;
  now?: () => number;
}): Promise<RewrapSummary> {
  const { config, store } = await openExistingStore(options.env);
  try {
    const keyring = await openKeyring(config, store);
    try {
      return await rewrapSecrets({
        store,
        keyring,
        clock: options.now === undefined ? systemClock : { now: options.now },
        batchSize: options.batchSize,
        after: options.after,
      });
    } finally {
      await keyring.close();
    }
  } finally {
    await store.close();
  }
}

/** The configured store, which must already exist. */
async function openExistingStore(env: Env): Promise<{ config: StorageConfig; store: Store }> {
  let config: StorageConfig;
  try {
    config = loadStorageConfig(env, { store: 'sqlite' });
  } catch (error) {
    throw new MaintenanceError((error as Error).message);
  }
  // Policy: maintenance never creates a store (or its key file) where none was: a mistyped
  // directory must fail, not report an empty success.
  if (config.store === 'sqlite' && !existsSync(sqliteFile(config.dataDir))) {
    throw new MaintenanceError(
      `no store in ${config.dataDir} (${sqliteFile(config.dataDir)} is missing)`,
    );
  }
  return { config, store: await openStore(config) };
}

/**
 * Deletes what has expired from the configured store (core/prune.ts: nonces past their expiry,
 * enrollments and runs a day past theirs) and answers the counts. Needs no keyring. Throws
 * {@link MaintenanceError} when the configuration is bad or no store exists.
 */
export async function pruneStore(options: { env: Env; now?: () => number }): Promise<PruneCounts> {
  const { store } = await openExistingStore(options.env);
  try {
    return await pruneExpired({
      store,
      clock: options.now === undefined ? systemClock : { now: options.now },
    });
  } finally {
    await store.close();
  }
}

/**
 * Moves every device key and enrollment row of a store written before keyed digests to its
 * keyed id (core/digest-migration.ts), creating the data dir's digest key file if there is none
 * (with `AGENTPACK_DIGEST_KEY` set, that key is used). Needs no keyring or bridge key. Throws
 * {@link MaintenanceError} when the configuration is bad or no store exists.
 */
export async function migrateDigestsStore(options: {
  env: Env;
  now?: () => number;
}): Promise<DigestMigration> {
  const { config, store } = await openExistingStore(options.env);
  try {
    // Policy: a digest key file is created only for a store that holds no keyed row yet; over
    // keyed rows a missing file is a lost key, and a new one would silently disable every key.
    const state = await digestState(store);
    let digestKey: Buffer;
    try {
      digestKey = await openDigestKey(config, store, state.keyed + state.migrated === 0);
    } catch (error) {
      throw new MaintenanceError((error as Error).message);
    }
    try {
      return await migrateDigests({
        store,
        digestKey,
        state, // counted above: one full scan, not two
        clock: options.now === undefined ? systemClock : { now: options.now },
      });
    } catch (error) {
      if (error instanceof PlainRowsRefused) throw new MaintenanceError(error.message);
      throw error;
    }
  } finally {
    await store.close();
  }
}
