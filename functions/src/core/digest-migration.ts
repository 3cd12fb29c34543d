/**
 * The upgrade of a store written by an older version (`maintenance migrate-digests`; the name
 * predates its second and third jobs and could become `maintenance upgrade`):
 *
 * 1. Keyed digests. Every device key and enrollment row
 * still stored under its plain SHA-256 digest moves to its keyed id ({@link rekeyLegacyDigest}),
 * without the secret ever being known. Until it has run, those rows authenticate nothing (the
 * service looks up keyed ids only): fail closed. Resumable and idempotent: rows are scanned in
 * id order; a row already keyed is skipped, and each move (write the keyed row, delete the
 * plain one, one audit event) is one transaction that re-reads the row first.
 *
 *    Policy: the move happens once, at the upgrade. Nothing tells a plain row the old version
 *    wrote from one a store writer forged later, so once the store holds a row this service
 *    wrote under a keyed digest (`digest: "keyed"` without `migrated_at`), plain rows are
 *    refused ({@link PlainRowsRefused}), never moved: moving them then would turn a forged row
 *    into a working key. Rows moved by an interrupted run carry `migrated_at` and do not count,
 *    so the upgrade still resumes.
 * 2. List keys. Device keys, delegations and runs written before the lists existed lack their
 *    `list_key` (creation time, then id), and an ordered query leaves a document without its
 *    order field out: they would be missing from `/device/list`, `/delegations/list` and
 *    `/runs/list`. Each is given its key, a page per transaction that re-reads the documents
 *    first (so a revoke committed meanwhile is kept); unaudited, like pruning: the field is
 *    derived from the document and changes nothing it means.
 * 3. The audit log's order (Firestore): events written before `/audit/query` lack the order
 *    key it pages by ({@link Store.backfillAuditOrder}); SQLite's log needs nothing.
 *
 * Each step is resumable and idempotent: run it again after an interruption.
 */
import { rfc3339, type Clock } from '../ports/clock.js';
import { PRUNE_LIMIT_MAX, type CollectionName, type Found, type Store } from '../ports/store.js';
import { rekeyLegacyDigest, type SecretKind } from './digest.js';
import { listKey } from './ids.js';

const TABLES = [
  { collection: 'device_keys', kind: 'device_key' },
  { collection: 'device_enrollments', kind: 'enrollment_code' },
] as const satisfies ReadonlyArray<{ collection: string; kind: SecretKind }>;

/** Plain-digest rows found in a store this service already wrote keyed rows to: not moved. */
export class PlainRowsRefused extends Error {
  constructor(readonly plainRows: number) {
    super(
      `${plainRows} device key or enrollment rows under plain digests were written after this ` +
        'store moved to keyed digests (by something other than this service): they are not ' +
        'moved and authenticate nothing; delete them',
    );
    this.name = 'PlainRowsRefused';
  }
}

/** How the device key and enrollment rows of a store are keyed. */
export interface DigestState {
  /** Rows under a plain digest (no `digest` marker). */
  plain: number;
  /** Rows the service wrote under a keyed digest. */
  keyed: number;
  /** Rows a migration moved to their keyed id. */
  migrated: number;
}

/** Every document of `collection`, a page at a time, in id order. */
async function* scanPages<C extends CollectionName>(
  store: Store,
  collection: C,
  batchSize: number,
): AsyncGenerator<Found<C>[]> {
  let after: string | null = null;
  for (;;) {
    const page: Found<C>[] = await store.scan(collection, after, batchSize);
    yield page;
    if (page.length < batchSize) return;
    after = page.at(-1)!.id;
  }
}

/** Counts the rows of each kind (a full scan: for maintenance only). */
export async function digestState(store: Store, batchSize = 200): Promise<DigestState> {
  const state: DigestState = { plain: 0, keyed: 0, migrated: 0 };
  for (const { collection } of TABLES) {
    for await (const page of scanPages(store, collection, batchSize)) {
      for (const { doc } of page) {
        if (doc.digest !== 'keyed') state.plain++;
        else if (doc.migrated_at !== undefined) state.migrated++;
        else state.keyed++;
      }
    }
  }
  return state;
}

export interface DigestMigration {
  /** Rows examined. */
  scanned: number;
  /** Rows moved to their keyed id by this run. */
  moved: number;
  /** Device keys, delegations and runs given their list key by this run. */
  list_keys: number;
  /** Audit events given their order key by this run (Firestore only). */
  audit_order_keys: number;
}

/** The collections that are listed by `list_key`, and the id each key ends with. */
const LISTED = {
  device_keys: (d: { key_id: string }) => d.key_id,
  delegations: (d: { delegation_id: string }) => d.delegation_id,
  runs: (d: { run_id: string }) => d.run_id,
} as const;

type ListedCollection = keyof typeof LISTED;

async function backfillListKeys(
  store: Store,
  collection: ListedCollection,
  batchSize: number,
): Promise<number> {
  const idOf = LISTED[collection] as (d: object) => string;
  let set = 0;
  for await (const page of scanPages(store, collection, batchSize)) {
    const lacking = page.filter((f) => f.doc.list_key === undefined).map((f) => f.id);
    if (lacking.length > 0) {
      set += await store.transact(async (tx) => {
        const fresh = await Promise.all(lacking.map((id) => tx.get(collection, id)));
        let n = 0;
        fresh.forEach((doc, i) => {
          if (doc === null || doc.list_key !== undefined) return;
          tx.set(collection, lacking[i]!, { ...doc, list_key: listKey(doc.created_at, idOf(doc)) });
          n++;
        });
        return n;
      });
    }
  }
  return set;
}

async function backfillAuditOrder(store: Store, batchSize: number): Promise<number> {
  let updated = 0;
  let after: string | null = null;
  do {
    const step = await store.backfillAuditOrder(after, batchSize);
    updated += step.updated;
    if (step.next !== null && after !== null && step.next <= after) {
      throw new Error('the audit log scan did not advance: the store ignores its order');
    }
    after = step.next;
  } while (after !== null);
  return updated;
}

type DigestCollection = (typeof TABLES)[number]['collection'];

async function migrateCollection(
  options: { store: Store; digestKey: Uint8Array; clock: Clock; batchSize: number },
  collection: DigestCollection,
  kind: SecretKind,
  summary: DigestMigration,
): Promise<void> {
  const { store, digestKey, clock, batchSize } = options;
  for await (const page of scanPages(store, collection, batchSize)) {
    for (const { id } of page) {
      summary.scanned++;
      const moved = await store.transact(async (tx) => {
        const doc = await tx.get(collection, id);
        if (doc === null || doc.digest === 'keyed') return false;
        const at = rfc3339(clock.now());
        tx.set(collection, rekeyLegacyDigest(digestKey, kind, id), {
          ...doc,
          digest: 'keyed',
          migrated_at: at,
        });
        tx.delete(collection, id);
        tx.audit({
          category: 'auth',
          action: 'digest.migrate',
          actor: { kind: 'maintenance' },
          target: { agent_id: doc.agent_id },
          at,
          details: { collection, key_id: doc.key_id },
        });
        return true;
      });
      if (moved) summary.moved++;
    }
  }
}

export async function migrateDigests(options: {
  store: Store;
  digestKey: Uint8Array;
  clock: Clock;
  batchSize?: number;
  /** The store's {@link digestState}, when the caller has just counted it. */
  state?: DigestState;
}): Promise<DigestMigration> {
  const summary: DigestMigration = { scanned: 0, moved: 0, list_keys: 0, audit_order_keys: 0 };
  const full = { ...options, batchSize: options.batchSize ?? 200 };
  const state = options.state ?? (await digestState(options.store, full.batchSize));
  if (state.keyed > 0 && state.plain > 0) throw new PlainRowsRefused(state.plain);
  for (const { collection, kind } of TABLES)
    await migrateCollection(full, collection, kind, summary);
  // After the digests: a moved device key row is the one to give its list key.
  for (const collection of Object.keys(LISTED) as ListedCollection[]) {
    summary.list_keys += await backfillListKeys(options.store, collection, full.batchSize);
  }
  summary.audit_order_keys = await backfillAuditOrder(
    options.store,
    Math.min(full.batchSize, PRUNE_LIMIT_MAX),
  );
  return summary;
}
