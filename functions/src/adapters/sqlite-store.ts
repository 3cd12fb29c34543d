/**
 * The embedded store: SQLite through better-sqlite3, one file, WAL mode. With the default
 * `synchronous=NORMAL` an acknowledged write survives a killed process (the WAL frame is in the
 * OS before the commit returns); `synchronous: 'full'` also survives a power cut, at the cost of
 * an fsync per commit.
 *
 * Each collection is a table of JSON documents keyed by id, with an expression index per
 * queryable field. Transactions are serialized by an in-process queue on the writer connection
 * (`BEGIN IMMEDIATE`, so another process cannot interleave either); reads outside transactions
 * use a second connection, so they see committed data only, never a transaction in flight.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEvent } from '../core/audit.js';
import {
  AUDIT_PAGE_MAX,
  type AuditRecord,
  EXPIRING,
  type ExpiringCollection,
  INDEXED_FIELDS,
  PRUNE_LIMIT_MAX,
  type CollectionName,
  type Collections,
  type Found,
  type IndexedField,
  ORDER_FIELDS,
  type Query,
  type Store,
  type StoreReader,
  type Tx,
} from '../ports/store.js';

type Db = Database.Database;

const COLLECTIONS = Object.keys(INDEXED_FIELDS) as CollectionName[];

/**
 * An audit key: the event's commit sequence (`seq`, the rowid, from 1), in decimal. Assigned in
 * commit order, so a page read after another never misses an event committed in between.
 */
const SEQ_KEY = /^[1-9][0-9]{0,15}$/;
const EXPIRING_COLLECTIONS = Object.keys(EXPIRING) as ExpiringCollection[];

function migrate(db: Db): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS audit_events (
      seq INTEGER PRIMARY KEY,
      at TEXT NOT NULL,
      data TEXT NOT NULL
    ) STRICT;
  `);
  for (const c of COLLECTIONS) {
    db.exec(`CREATE TABLE IF NOT EXISTS ${c} (id TEXT PRIMARY KEY, data TEXT NOT NULL) STRICT;`);
    for (const f of INDEXED_FIELDS[c] as readonly string[]) {
      db.exec(`CREATE INDEX IF NOT EXISTS ${c}_${f} ON ${c} (json_extract(data, '$.${f}'));`);
    }
  }
  // The expiry field of each expiring collection, for pruning (an equality index above may
  // already be it: same name, so IF NOT EXISTS keeps one).
  for (const c of EXPIRING_COLLECTIONS) {
    const f = EXPIRING[c].field;
    db.exec(`CREATE INDEX IF NOT EXISTS ${c}_${f} ON ${c} (json_extract(data, '$.${f}'));`);
  }
}

/** Reads over one connection, with prepared statements cached per collection. */
class SqliteReader implements StoreReader {
  private readonly gets = new Map<string, Database.Statement>();
  private readonly finds = new Map<string, Database.Statement>();

  constructor(protected readonly db: Db) {}

  async get<C extends CollectionName>(collection: C, id: string): Promise<Collections[C] | null> {
    return this.getSync(collection, id);
  }

  getSync<C extends CollectionName>(collection: C, id: string): Collections[C] | null {
    let stmt = this.gets.get(collection);
    if (stmt === undefined) {
      stmt = this.db.prepare(`SELECT data FROM ${collection} WHERE id = ?`).pluck();
      this.gets.set(collection, stmt);
    }
    const data = stmt.get(id) as string | undefined;
    return data === undefined ? null : (JSON.parse(data) as Collections[C]);
  }

  async find<C extends CollectionName>(
    collection: C,
    field: IndexedField<C>,
    value: string,
    limit: number,
  ): Promise<Found<C>[]> {
    const key = `${collection}.${field}`;
    let stmt = this.finds.get(key);
    if (stmt === undefined) {
      if (!(INDEXED_FIELDS[collection] as readonly string[]).includes(field)) {
        throw new Error(`${collection}.${field} is not an indexed field`);
      }
      stmt = this.db.prepare(
        `SELECT id, data FROM ${collection} WHERE json_extract(data, '$.${field}') = ? LIMIT ?`,
      );
      this.finds.set(key, stmt);
    }
    const rows = stmt.all(value, limit) as { id: string; data: string }[];
    return rows.map((r) => ({ id: r.id, doc: JSON.parse(r.data) as Collections[C] }));
  }

  async query<C extends CollectionName>(collection: C, query: Query<C>): Promise<Found<C>[]> {
    const [field, value] = query.where ?? [undefined, undefined];
    const after = query.after !== undefined;
    const key = `${collection}?${field ?? ''}>${query.orderBy}${after ? '>' : ''}`;
    let stmt = this.finds.get(key);
    if (stmt === undefined) {
      if (
        field !== undefined &&
        !(INDEXED_FIELDS[collection] as readonly string[]).includes(field)
      ) {
        throw new Error(`${collection}.${field} is not an indexed field`);
      }
      if (!(ORDER_FIELDS[collection] as readonly string[]).includes(query.orderBy)) {
        throw new Error(`${collection}.${query.orderBy} is not an order field`);
      }
      const order = `json_extract(data, '$.${query.orderBy}')`;
      // Like Firestore, an ordered query leaves out documents without the order field.
      const conditions = [`${order} IS NOT NULL`];
      if (field !== undefined) conditions.push(`json_extract(data, '$.${field}') = ?`);
      if (after) conditions.push(`${order} > ?`);
      stmt = this.db.prepare(
        `SELECT id, data FROM ${collection} WHERE ${conditions.join(' AND ')} ORDER BY ${order} LIMIT ?`,
      );
      this.finds.set(key, stmt);
    }
    // JSON true and false read back from json_extract as 1 and 0.
    const bound = typeof value === 'boolean' ? Number(value) : value;
    const values: unknown[] = [
      ...(field === undefined ? [] : [bound]),
      ...(after ? [query.after] : []),
      query.limit,
    ];
    const rows = stmt.all(...values) as { id: string; data: string }[];
    return rows.map((r) => ({ id: r.id, doc: JSON.parse(r.data) as Collections[C] }));
  }
}

type Write =
  | { op: 'set'; collection: CollectionName; id: string; data: string }
  | { op: 'delete'; collection: CollectionName; id: string };

class SqliteTx implements Tx {
  readonly writes: Write[] = [];
  readonly events: AuditEvent[] = [];

  constructor(private readonly reader: SqliteReader) {}

  get<C extends CollectionName>(collection: C, id: string): Promise<Collections[C] | null> {
    return this.reader.get(collection, id);
  }

  find<C extends CollectionName>(
    collection: C,
    field: IndexedField<C>,
    value: string,
    limit: number,
  ): Promise<Found<C>[]> {
    return this.reader.find(collection, field, value, limit);
  }

  query<C extends CollectionName>(collection: C, query: Query<C>): Promise<Found<C>[]> {
    return this.reader.query(collection, query);
  }

  set<C extends CollectionName>(collection: C, id: string, doc: Collections[C]): void {
    this.writes.push({ op: 'set', collection, id, data: JSON.stringify(doc) });
  }

  delete(collection: CollectionName, id: string): void {
    this.writes.push({ op: 'delete', collection, id });
  }

  audit(event: AuditEvent): void {
    this.events.push(event);
  }
}

export interface SqliteStoreOptions {
  /** The database file; its folder is created if missing. */
  file: string;
  /** `normal` (default): durable across a killed process; `full`: also across power loss. */
  synchronous?: 'normal' | 'full';
}

/** Opens (and migrates) the embedded store. */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
  // Created 0600 up front: SQLite gives its -wal and -shm files the database file's mode.
  closeSync(openSync(options.file, 'a', 0o600));
  const writer = new Database(options.file);
  writer.pragma('journal_mode = WAL');
  writer.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  writer.pragma('busy_timeout = 5000');
  migrate(writer);
  const readerDb = new Database(options.file, { readonly: true });
  readerDb.pragma('busy_timeout = 5000');
  const reader = new SqliteReader(readerDb);
  const txReader = new SqliteReader(writer);

  // Append-only, keyed by rowid: an insert touches only the table's last page.
  const insertAudit = writer.prepare('INSERT INTO audit_events (at, data) VALUES (?, ?)');
  const setStmts = new Map<string, Database.Statement>();
  const deleteStmts = new Map<string, Database.Statement>();
  for (const c of COLLECTIONS) {
    setStmts.set(c, writer.prepare(`INSERT OR REPLACE INTO ${c} (id, data) VALUES (?, ?)`));
    deleteStmts.set(c, writer.prepare(`DELETE FROM ${c} WHERE id = ?`));
  }
  // One statement each, so the choice and the deletion are atomic: a document rewritten with a
  // later expiry meanwhile is never deleted.
  const pruneStmts = new Map<ExpiringCollection, Database.Statement>();
  for (const c of EXPIRING_COLLECTIONS) {
    const field = `json_extract(data, '$.${EXPIRING[c].field}')`;
    pruneStmts.set(
      c,
      writer.prepare(
        `DELETE FROM ${c} WHERE id IN (SELECT id FROM ${c} WHERE ${field} < ? LIMIT ?)`,
      ),
    );
  }
  const auditPageStmt = readerDb.prepare(
    'SELECT seq, data FROM audit_events WHERE seq > ? AND at >= ? AND at < ? ORDER BY seq LIMIT ?',
  );
  const begin = writer.prepare('BEGIN IMMEDIATE');
  const commit = writer.prepare('COMMIT');
  const rollback = writer.prepare('ROLLBACK');

  // Transactions run one at a time: the queue is a promise chain.
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  async function runOne<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (closed) throw new Error('the store is closed');
    begin.run();
    try {
      const tx = new SqliteTx(txReader);
      const result = await fn(tx);
      for (const w of tx.writes) {
        if (w.op === 'set') setStmts.get(w.collection)!.run(w.id, w.data);
        else deleteStmts.get(w.collection)!.run(w.id);
      }
      for (const event of tx.events) insertAudit.run(event.at, JSON.stringify(event));
      commit.run();
      return result;
    } catch (error) {
      if (writer.inTransaction) rollback.run();
      throw error;
    }
  }

  // Group commit of read audits: appends that arrive while the queue is busy share one
  // transaction, so concurrent reads pay for one commit instead of one each.
  let pendingAudit: Array<{ events: readonly AuditEvent[]; done: (e?: unknown) => void }> = [];
  let auditScheduled = false;
  function flushAudit(): void {
    const batch = pendingAudit;
    pendingAudit = [];
    auditScheduled = false;
    try {
      writer.transaction(() => {
        for (const { events } of batch) {
          for (const event of events) insertAudit.run(event.at, JSON.stringify(event));
        }
      })();
      for (const { done } of batch) done();
    } catch (error) {
      for (const { done } of batch) done(error);
    }
  }

  return {
    kind: 'sqlite',
    appendAudit(events) {
      if (closed) return Promise.reject(new Error('the store is closed'));
      return new Promise<void>((resolve, reject) => {
        pendingAudit.push({ events, done: (e) => (e === undefined ? resolve() : reject(e)) });
        if (!auditScheduled) {
          auditScheduled = true;
          // Wait for the current I/O phase to end, so reads arriving together share a commit.
          const run = queue.then(() => new Promise<void>((r) => setImmediate(r))).then(flushAudit);
          queue = run.catch(() => undefined);
        }
      });
    },
    get: (collection, id) => reader.get(collection, id),
    find: (collection, field, value, limit) => reader.find(collection, field, value, limit),
    query: (collection, query) => reader.query(collection, query),
    transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
      const run = queue.then(() => runOne(fn));
      queue = run.catch(() => undefined);
      return run;
    },
    pruneExpired(collection, beforeIso, limit) {
      const stmt = pruneStmts.get(collection);
      if (stmt === undefined) return Promise.reject(new Error(`${collection} does not expire`));
      if (!Number.isInteger(limit) || limit < 1 || limit > PRUNE_LIMIT_MAX) {
        return Promise.reject(
          new Error(`limit must be a whole number from 1 to ${PRUNE_LIMIT_MAX}`),
        );
      }
      // Queued like a transaction: writes go through the writer connection one at a time.
      const run = queue.then(() => {
        if (closed) throw new Error('the store is closed');
        return stmt.run(beforeIso, limit).changes;
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async scan(collection, afterId, limit) {
      const rows = readerDb
        .prepare(`SELECT id, data FROM ${collection} WHERE id > ? ORDER BY id LIMIT ?`)
        .all(afterId ?? '', limit) as { id: string; data: string }[];
      return rows.map((r) => ({
        id: r.id,
        doc: JSON.parse(r.data) as Collections[typeof collection],
      }));
    },
    async isEmpty(collection: CollectionName): Promise<boolean> {
      return readerDb.prepare(`SELECT 1 FROM ${collection} LIMIT 1`).get() === undefined;
    },
    async auditPage(query): Promise<AuditRecord[]> {
      if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > AUDIT_PAGE_MAX) {
        throw new Error(`limit must be a whole number from 1 to ${AUDIT_PAGE_MAX}`);
      }
      if (query.after !== undefined && !SEQ_KEY.test(query.after)) {
        throw new Error('not an audit key of this store');
      }
      // `at` is compared as written (RFC 3339 from toISOString): '' is before every time, '~'
      // after every time.
      const rows = auditPageStmt.all(
        query.after === undefined ? 0 : Number(query.after),
        query.since ?? '',
        query.until ?? '~',
        query.limit,
      ) as { seq: number; data: string }[];
      return rows.map((r) => ({
        key: String(r.seq),
        event_id: `ev_${r.seq}`,
        event: JSON.parse(r.data) as AuditEvent,
      }));
    },
    isAuditKey: (key) => SEQ_KEY.test(key),
    async backfillAuditOrder() {
      return { scanned: 0, updated: 0, next: null };
    },
    async auditEvents(limit: number): Promise<AuditEvent[]> {
      const rows = readerDb
        .prepare('SELECT data FROM audit_events ORDER BY seq LIMIT ?')
        .pluck()
        .all(limit) as string[];
      return rows.map((r) => JSON.parse(r) as AuditEvent);
    },
    async close(): Promise<void> {
      await queue;
      closed = true;
      readerDb.close();
      writer.close();
    },
  };
}
