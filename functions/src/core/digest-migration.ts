/**
 * The migration of a store written before keyed digests: every device key and enrollment row
 * still stored under its plain SHA-256 digest moves to its keyed id ({@link rekeyLegacyDigest}),
 * without the secret ever being known. Until it has run, those rows authenticate nothing (the
 * service looks up keyed ids only): fail closed. Resumable and idempotent: rows are scanned in
 * id order; a row already keyed is skipped, and each move (write the keyed row, delete the
 * plain one, one audit event) is one transaction that re-reads the row first.
 */
import { rfc3339, type Clock } from '../ports/clock.js';
import type { Store } from '../ports/store.js';
import { rekeyLegacyDigest, type SecretKind } from './digest.js';

const TABLES = [
  { collection: 'device_keys', kind: 'device_key' },
  { collection: 'device_enrollments', kind: 'enrollment_code' },
] as const satisfies ReadonlyArray<{ collection: string; kind: SecretKind }>;

export interface DigestMigration {
  /** Rows examined. */
  scanned: number;
  /** Rows moved to their keyed id by this run. */
  moved: number;
}

type DigestCollection = (typeof TABLES)[number]['collection'];

async function migrateCollection(
  options: { store: Store; digestKey: Uint8Array; clock: Clock; batchSize: number },
  collection: DigestCollection,
  kind: SecretKind,
  summary: DigestMigration,
): Promise<void> {
  const { store, digestKey, clock, batchSize } = options;
  let after: string | null = null;
  for (;;) {
    const page: Array<{ id: string }> = await store.scan(collection, after, batchSize);
    for (const { id } of page) {
      summary.scanned++;
      const moved = await store.transact(async (tx) => {
        const doc = await tx.get(collection, id);
        if (doc === null || doc.digest === 'keyed') return false;
        tx.set(collection, rekeyLegacyDigest(digestKey, kind, id), { ...doc, digest: 'keyed' });
        tx.delete(collection, id);
        tx.audit({
          category: 'auth',
          action: 'digest.migrate',
          actor: { kind: 'maintenance' },
          target: { agent_id: doc.agent_id },
          at: rfc3339(clock.now()),
          details: { collection, key_id: doc.key_id },
        });
        return true;
      });
      if (moved) summary.moved++;
    }
    if (page.length < batchSize) return;
    after = page.at(-1)!.id;
  }
}

export async function migrateDigests(options: {
  store: Store;
  digestKey: Uint8Array;
  clock: Clock;
  batchSize?: number;
}): Promise<DigestMigration> {
  const summary: DigestMigration = { scanned: 0, moved: 0 };
  const full = { ...options, batchSize: options.batchSize ?? 200 };
  for (const { collection, kind } of TABLES)
    await migrateCollection(full, collection, kind, summary);
  return summary;
}
