/**
 * Rewrap: after the key-encryption key rotates (a new primary CryptoKeyVersion in Cloud KMS),
 * re-wrap every stored data key under the current primary, so the old key version can later be
 * disabled. Only `wrapped_key` and `kek_ref` change: the value's ciphertext, iv and tag are
 * never touched, and the value is never decrypted.
 *
 * Resumable and idempotent: versions are scanned in id order from `after`; a version already
 * under the primary is skipped, so a second run rewraps nothing and an interrupted run resumes
 * from the last id it reported. The key service is called outside any transaction (a retried
 * transaction must have no outside effects); the transaction then re-reads the version and
 * writes only if its wrapped key is still the one that was unwrapped, so a version destroyed or
 * rewrapped meanwhile is left alone. Each rewrap is audited in the same transaction.
 */
import type { Clock } from '../ports/clock.js';
import { rfc3339 } from '../ports/clock.js';
import type { Keyring } from '../ports/keyring.js';
import type { Store } from '../ports/store.js';
import { recordAad } from './envelope.js';

/** What a run did. `last_id` is the last version id examined: pass it as `after` to resume. */
export interface RewrapSummary {
  /** Versions examined. */
  scanned: number;
  /** Versions whose data key is now wrapped under the primary key by this run. */
  rewrapped: number;
  /** Versions left as they were: already under the primary, or destroyed or rewrapped meanwhile. */
  skipped: number;
  last_id: string | null;
}

/** A run that stopped on an error; `summary` says how far it got (resume with its `last_id`). */
export class RewrapStopped extends Error {
  constructor(
    readonly summary: RewrapSummary,
    /** The version id it failed on. */
    readonly failedId: string,
    readonly reason: unknown,
  ) {
    super(
      `rewrap stopped at ${failedId}: ${reason instanceof Error ? reason.message : String(reason)}`,
    );
    this.name = 'RewrapStopped';
  }
}

export const REWRAP_BATCH_DEFAULT = 100;
export const REWRAP_BATCH_MAX = 1000;

/**
 * Re-wraps the data keys of all stored secret versions whose `kek_ref` is not the keyring's
 * current primary. Throws {@link RewrapStopped} on the first version it cannot rewrap (the key
 * service unavailable, a data key that does not unwrap), after the versions before it are done.
 *
 * @example
 * const summary = await rewrapSecrets({ store, keyring, clock: systemClock });
 * // { scanned: 12, rewrapped: 12, skipped: 0, last_id: 'agent-a:openai_key:3' }
 */
export async function rewrapSecrets(options: {
  store: Store;
  keyring: Keyring;
  clock: Clock;
  /** Versions read per scan (default 100, at most 1000). */
  batchSize?: number;
  /** Resume after this version id (a previous run's `last_id`). */
  after?: string | null;
}): Promise<RewrapSummary> {
  const { store, keyring, clock } = options;
  const batchSize = options.batchSize ?? REWRAP_BATCH_DEFAULT;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > REWRAP_BATCH_MAX) {
    throw new Error(`batch size must be a whole number from 1 to ${REWRAP_BATCH_MAX}`);
  }
  const summary: RewrapSummary = {
    scanned: 0,
    rewrapped: 0,
    skipped: 0,
    last_id: options.after ?? null,
  };
  for (;;) {
    const batch = await store.scan('secret_versions', summary.last_id, batchSize);
    if (batch.length === 0) return summary;
    // Read once per batch: a rotation during a long run is picked up by the next batch.
    const primary = await keyring.primaryRef();
    for (const { id, doc } of batch) {
      try {
        if (doc.kek_ref === primary) {
          summary.skipped++;
        } else if (await rewrapOne(store, keyring, clock, id, doc)) {
          summary.rewrapped++;
        } else {
          summary.skipped++;
        }
      } catch (error) {
        throw new RewrapStopped({ ...summary }, id, error);
      }
      summary.scanned++;
      summary.last_id = id;
    }
    if (batch.length < batchSize) return summary;
  }
}

/** Rewraps one version; false when it changed (destroyed, rewrapped) since it was read. */
async function rewrapOne(
  store: Store,
  keyring: Keyring,
  clock: Clock,
  id: string,
  doc: { agent_id: string; name: string; version: number; wrapped_key: string; kek_ref: string },
): Promise<boolean> {
  const aad = recordAad(doc.agent_id, doc.name, doc.version);
  const dataKey = await keyring.unwrap(doc.wrapped_key, doc.kek_ref, aad);
  let rewrapped: { wrapped: string; kek_ref: string };
  try {
    rewrapped = await keyring.wrap(dataKey, aad);
  } finally {
    dataKey.fill(0);
  }
  return store.transact(async (tx) => {
    const current = await tx.get('secret_versions', id);
    if (current === null || current.wrapped_key !== doc.wrapped_key) return false;
    tx.set('secret_versions', id, {
      ...current,
      wrapped_key: rewrapped.wrapped,
      kek_ref: rewrapped.kek_ref,
    });
    tx.audit({
      category: 'secrets',
      action: 'secret.rewrap',
      actor: { kind: 'maintenance' },
      target: { agent_id: doc.agent_id, secret: doc.name, version: doc.version },
      at: rfc3339(clock.now()),
      details: { from: doc.kek_ref, to: rewrapped.kek_ref },
    });
    return true;
  });
}
