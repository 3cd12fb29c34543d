/**
 * The production store: Cloud Firestore through the Admin SDK (which bypasses the security
 * rules; `firestore.rules` denies every client). One top-level collection per document kind,
 * documents keyed as the port says, audit events with random ids.
 *
 * Transactions are Firestore transactions: reads first, writes buffered and applied at the end
 * (Firestore refuses a read after a write), retried by the SDK on contention, which is why a
 * transaction callback must be free of outside effects.
 */
import {
  FieldPath,
  Timestamp,
  type Firestore,
  type Query as FirestoreQuery,
  type Transaction,
} from 'firebase-admin/firestore';
import type { AuditEvent } from '../core/audit.js';
import {
  AUDIT_PAGE_MAX,
  EXPIRING,
  PRUNE_LIMIT_MAX,
  type CollectionName,
  type Collections,
  type Found,
  type IndexedField,
  type Query,
  type Store,
  type Tx,
} from '../ports/store.js';

/** The collection that receives audit events. */
export const AUDIT_COLLECTION = 'audit_events';

/**
 * The field audit events are ordered and paged by: `at` + `~` + the random document id, so that
 * events of the same millisecond still have one order. The adapter's own (reads strip it). It is
 * the collection's one indexed field (ascending only, see firestore.indexes.json): it grows with
 * time, which caps the collection's writes at Firestore's rate for a monotonically increasing
 * indexed field (about 500/s); sharding the log's order is left to a later change.
 *
 * The order is of `at` (taken when the request began), not of commit: an event that commits
 * after a reader's cursor has passed its key (a slower transaction begun earlier, or one of the
 * same millisecond with a lower random id) is not on that reader's later pages. SQLite's
 * sequence has no such gap; a sequence of commit here is for the same later change.
 */
export const AUDIT_ORDER_FIELD = 'order_key';

/** The order key of an audit event: see {@link AUDIT_ORDER_FIELD}. */
function auditOrderKey(at: string, docId: string): string {
  return `${at}~${docId}`;
}

/** An audit event as stored: the event and its order key. */
function storedAudit(event: AuditEvent, docId: string): object {
  return { ...event, [AUDIT_ORDER_FIELD]: auditOrderKey(event.at, docId) };
}

/** An audit event as read: the order key stripped. */
function auditOf(data: unknown): AuditEvent {
  const { [AUDIT_ORDER_FIELD]: _key, ...event } = data as Record<string, unknown>;
  return event as unknown as AuditEvent;
}

/**
 * Collections whose documents expire (the port's {@link EXPIRING}): the RFC 3339 expiry field
 * plus the retention is also written as a Firestore Timestamp `ttl_at`, the field a TTL policy
 * (firestore.indexes.json) deletes by. `ttl_at` is the adapter's own: reads strip it.
 */
const TTL_FIELDS: Partial<Record<CollectionName, { field: string; retainMs: number }>> = EXPIRING;

function toStored(collection: CollectionName, doc: object): object {
  const ttl = TTL_FIELDS[collection];
  if (ttl === undefined) return doc;
  const value = (doc as Record<string, unknown>)[ttl.field];
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? doc : { ...doc, ttl_at: Timestamp.fromMillis(ms + ttl.retainMs) };
}

function fromStored<C extends CollectionName>(collection: C, data: unknown): Collections[C] {
  if (TTL_FIELDS[collection] === undefined) return data as Collections[C];
  const { ttl_at: _ttl, ...rest } = data as Record<string, unknown>;
  return rest as unknown as Collections[C];
}

/** The Firestore query of a port query: equalities, then the keyset range and its order. */
function toFirestoreQuery<C extends CollectionName>(
  db: Firestore,
  collection: C,
  query: Query<C>,
): FirestoreQuery {
  let q: FirestoreQuery = db.collection(collection);
  if (query.where !== undefined) q = q.where(query.where[0], '==', query.where[1]);
  if (query.after !== undefined) q = q.where(query.orderBy, '>', query.after);
  return q.orderBy(query.orderBy).limit(query.limit);
}

/** An audit key: an order key, `at~id` (the id as Firestore makes them, or any document id). */
const AUDIT_KEY = /^[0-9T:.+-]{1,40}Z?~[A-Za-z0-9_-]{1,100}$/;

function foundOf<C extends CollectionName>(
  collection: C,
  docs: readonly { id: string; data(): unknown }[],
): Found<C>[] {
  return docs.map((d) => ({ id: d.id, doc: fromStored(collection, d.data()) }));
}

class FirestoreTx implements Tx {
  private readonly writes: Array<(t: Transaction) => void> = [];

  constructor(
    private readonly db: Firestore,
    private readonly t: Transaction,
  ) {}

  async get<C extends CollectionName>(collection: C, id: string): Promise<Collections[C] | null> {
    const snap = await this.t.get(this.db.collection(collection).doc(id));
    return snap.exists ? fromStored(collection, snap.data()) : null;
  }

  async find<C extends CollectionName>(
    collection: C,
    field: IndexedField<C>,
    value: string,
    limit: number,
  ): Promise<Found<C>[]> {
    const snap = await this.t.get(
      this.db.collection(collection).where(field, '==', value).limit(limit),
    );
    return foundOf(collection, snap.docs);
  }

  async query<C extends CollectionName>(collection: C, query: Query<C>): Promise<Found<C>[]> {
    return foundOf(
      collection,
      (await this.t.get(toFirestoreQuery(this.db, collection, query))).docs,
    );
  }

  set<C extends CollectionName>(collection: C, id: string, doc: Collections[C]): void {
    const ref = this.db.collection(collection).doc(id);
    this.writes.push((t) => t.set(ref, toStored(collection, doc)));
  }

  delete(collection: CollectionName, id: string): void {
    const ref = this.db.collection(collection).doc(id);
    this.writes.push((t) => t.delete(ref));
  }

  audit(event: AuditEvent): void {
    const ref = this.db.collection(AUDIT_COLLECTION).doc();
    this.writes.push((t) => t.set(ref, storedAudit(event, ref.id)));
  }

  flush(): void {
    for (const write of this.writes) write(this.t);
  }
}

/** A store over an initialized Firestore client. */
export function firestoreStore(db: Firestore): Store {
  return {
    kind: 'firestore',
    async get(collection, id) {
      const snap = await db.collection(collection).doc(id).get();
      return snap.exists ? fromStored(collection, snap.data()) : null;
    },
    async find(collection, field, value, limit) {
      const snap = await db.collection(collection).where(field, '==', value).limit(limit).get();
      return foundOf(collection, snap.docs);
    },
    async query(collection, query) {
      return foundOf(collection, (await toFirestoreQuery(db, collection, query).get()).docs);
    },
    async appendAudit(events) {
      const batch = db.batch();
      for (const event of events) {
        const ref = db.collection(AUDIT_COLLECTION).doc();
        batch.set(ref, storedAudit(event, ref.id));
      }
      await batch.commit();
    },
    transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
      return db.runTransaction(async (t) => {
        const tx = new FirestoreTx(db, t);
        const result = await fn(tx);
        tx.flush();
        return result;
      });
    },
    async scan(collection, afterId, limit) {
      let query = db.collection(collection).orderBy(FieldPath.documentId()).limit(limit);
      if (afterId !== null) query = query.startAfter(afterId);
      return foundOf(collection, (await query.get()).docs);
    },
    async pruneExpired(collection, beforeIso, limit) {
      if (!Number.isInteger(limit) || limit < 1 || limit > PRUNE_LIMIT_MAX) {
        throw new Error(`limit must be a whole number from 1 to ${PRUNE_LIMIT_MAX}`);
      }
      // Production relies on the TTL policies; this is for maintenance and the emulators. In a
      // transaction, so a document rewritten with a later expiry since the query is not deleted.
      const expired = db
        .collection(collection)
        .where(EXPIRING[collection].field, '<', beforeIso)
        .limit(limit);
      return db.runTransaction(async (t) => {
        const snap = await t.get(expired);
        for (const d of snap.docs) t.delete(d.ref);
        return snap.size;
      });
    },
    async isEmpty(collection) {
      return (await db.collection(collection).limit(1).get()).empty;
    },
    async auditEvents(limit) {
      const snap = await db.collection(AUDIT_COLLECTION).limit(limit).get();
      return snap.docs.map((d) => auditOf(d.data()));
    },
    async auditPage(query) {
      if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > AUDIT_PAGE_MAX) {
        throw new Error(`limit must be a whole number from 1 to ${AUDIT_PAGE_MAX}`);
      }
      // One lower bound (the cursor or `since`, whichever is later) and one upper bound, both
      // on the order key: `at~id` >= `since` exactly when `at` >= `since`, and < `until` exactly
      // when `at` < `until` (times as the service writes them, all of one length).
      let q: FirestoreQuery = db.collection(AUDIT_COLLECTION);
      const { after, since, until } = query;
      if (after !== undefined && (since === undefined || after >= since)) {
        q = q.where(AUDIT_ORDER_FIELD, '>', after);
      } else if (since !== undefined) {
        q = q.where(AUDIT_ORDER_FIELD, '>=', since);
      }
      if (until !== undefined) q = q.where(AUDIT_ORDER_FIELD, '<', until);
      const snap = await q.orderBy(AUDIT_ORDER_FIELD).limit(query.limit).get();
      return snap.docs.map((d) => ({
        key: String(d.get(AUDIT_ORDER_FIELD)),
        event_id: d.id,
        event: auditOf(d.data()),
      }));
    },
    isAuditKey: (key) => AUDIT_KEY.test(key),
    async backfillAuditOrder(afterId, limit) {
      if (!Number.isInteger(limit) || limit < 1 || limit > PRUNE_LIMIT_MAX) {
        throw new Error(`limit must be a whole number from 1 to ${PRUNE_LIMIT_MAX}`);
      }
      let q = db.collection(AUDIT_COLLECTION).orderBy(FieldPath.documentId()).limit(limit);
      if (afterId !== null) q = q.startAfter(afterId);
      const snap = await q.get();
      // Only the order key is written (a field merge), so nothing of the event can change.
      const batch = db.batch();
      let updated = 0;
      for (const d of snap.docs) {
        const at = d.get('at');
        if (d.get(AUDIT_ORDER_FIELD) !== undefined || typeof at !== 'string') continue;
        batch.set(d.ref, { [AUDIT_ORDER_FIELD]: auditOrderKey(at, d.id) }, { merge: true });
        updated++;
      }
      if (updated > 0) await batch.commit();
      return {
        scanned: snap.size,
        updated,
        next: snap.size < limit ? null : snap.docs.at(-1)!.id,
      };
    },
    async close() {
      await db.terminate();
    },
  };
}

/** The Google Cloud universe the service runs in. */
export const FIRESTORE_UNIVERSE = 'googleapis.com';

/**
 * Opens the default app's Firestore, loading firebase-admin only now (it is the heaviest
 * import, and the embedded mode never needs it). Honors `FIRESTORE_EMULATOR_HOST`.
 */
export async function openFirestoreStore(options: { projectId?: string } = {}): Promise<Store> {
  const { getApps, initializeApp } = await import('firebase-admin/app');
  const { getFirestore } = await import('firebase-admin/firestore');
  // The default app only: tests and tools may hold named apps pointed elsewhere.
  const existing = getApps().find((app) => app.name === '[DEFAULT]');
  const app =
    existing ??
    initializeApp(options.projectId === undefined ? {} : { projectId: options.projectId });
  const db = getFirestore(app);
  // Named, not discovered: without it the client asks the credentials for their universe, which
  // on a machine without Google credentials (an emulator run) means a lookup of the cloud
  // metadata server. googleapis.com is the universe of every Cloud Functions deployment.
  if (existing === undefined) db.settings({ universeDomain: FIRESTORE_UNIVERSE });
  return firestoreStore(db);
}
