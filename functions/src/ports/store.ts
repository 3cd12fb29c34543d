/**
 * The store port: a small document store with real transactions. Both adapters (Firestore and
 * SQLite) implement exactly this, and one contract suite holds them to the same behaviour.
 *
 * Semantics every adapter keeps:
 * - Reads inside a transaction see the committed state when the transaction began (plus
 *   nothing of its own buffered writes): do every read first, then write. This is Firestore's
 *   rule, and the SQLite adapter buffers writes the same way, so core code behaves the same on
 *   both.
 * - Writes and audit events of a transaction commit together or not at all. If the audit write
 *   fails, the change fails (fail-closed audit).
 * - A transaction callback may run more than once (Firestore retries on contention), so it must
 *   have no side effects outside the transaction.
 */
import type { AuditEvent } from './audit-event.js';
import type {
  AgentDoc,
  CapabilityTokenDoc,
  DelegationDoc,
  DeviceKeyDoc,
  EnrollmentDoc,
  IssuerDoc,
  RequestNonceDoc,
  RoleDoc,
  RunDoc,
  SecretDoc,
  SecretVersionDoc,
  SettingDoc,
} from './documents.js';

export type * from './documents.js';

/** Every collection and the shape of its documents. */
export interface Collections {
  agents: AgentDoc;
  device_keys: DeviceKeyDoc;
  delegations: DelegationDoc;
  settings: SettingDoc;
  capability_tokens: CapabilityTokenDoc;
  secrets: SecretDoc;
  secret_versions: SecretVersionDoc;
  device_enrollments: EnrollmentDoc;
  request_nonces: RequestNonceDoc;
  runs: RunDoc;
  issuers: IssuerDoc;
  roles: RoleDoc;
}

export type CollectionName = keyof Collections;

/**
 * Fields a collection can be queried by equality. Each has an index in both stores
 * (SQLite: an expression index; Firestore: the automatic single-field index).
 */
export const INDEXED_FIELDS = {
  agents: ['disabled'],
  device_keys: ['key_id', 'agent_id'],
  delegations: ['from_agent', 'to_agent', 'live_from_agent'],
  settings: [],
  capability_tokens: ['sub'],
  secrets: ['agent_id'],
  secret_versions: [],
  device_enrollments: ['agent_id'],
  request_nonces: [],
  runs: ['root_run_id', 'public_key', 'agent_id', 'live_agent_id', 'spawned_by_key_id'],
  issuers: [],
  roles: ['issuer', 'agent_id'],
} as const satisfies { [C in CollectionName]: readonly (keyof Collections[C] & string)[] };

export type IndexedField<C extends CollectionName> = (typeof INDEXED_FIELDS)[C][number];

/**
 * Fields a query can be ordered (and keyset-paged) by. A paged walk orders by a field that is
 * unique per document (`run_id`, `delegation_id`), so "after the last one seen" never skips or
 * repeats a document whatever is added meanwhile; a count orders by a range field
 * (`expires_at`); a list orders by `list_key` (creation time, then the unique id). A walk that
 * must reach every document (retire, cascades) orders by a field every document has: Firestore
 * leaves a document without the order field out of an ordered query. Firestore needs a
 * composite index per (filters, order) pair: each query the core makes is declared in
 * firestore.indexes.json.
 */
export const ORDER_FIELDS = {
  agents: ['agent_id'],
  device_keys: ['key_id', 'list_key'],
  delegations: ['delegation_id', 'expires_at', 'list_key'],
  settings: [],
  capability_tokens: [],
  secrets: ['name'],
  secret_versions: [],
  device_enrollments: ['enrollment_id'],
  request_nonces: [],
  runs: ['run_id', 'expires_at', 'list_key'],
  issuers: ['issuer'],
  roles: ['role'],
} as const satisfies { [C in CollectionName]: readonly (keyof Collections[C] & string)[] };

export type OrderField<C extends CollectionName> = (typeof ORDER_FIELDS)[C][number];

const DAY_MS = 24 * 3600 * 1000;

/**
 * The collections whose documents expire: the RFC 3339 field each expires by, and how long a
 * document is kept after that time before it is deleted. The one declaration of expiry: the
 * SQLite adapter indexes these fields and `core/prune.ts` deletes by them (the local server, and
 * `maintenance prune`); the Firestore adapter writes each as a Timestamp `ttl_at` (field +
 * retainMs), which the TTL policies of firestore.indexes.json delete by.
 *
 * - `request_nonces`: gone at `expires_at`, the end of the replay window; past it a nonce no
 *   longer refuses anything (the timestamp check does).
 * - `device_enrollments`: refused as expired past `expires_at`; kept a day so a late attempt
 *   still reads as expired, not unknown.
 * - `runs`: a run past its expiry is dead whatever its state (its children never outlive it).
 *   Keeping it a day keeps its well-known status `expired` visible and its audit trail readable
 *   against the run. Pruning an ancestor is safe: the lineage check (`runStatus`) reads a
 *   missing ancestor as revoked, failing closed.
 */
export const EXPIRING = {
  request_nonces: { field: 'expires_at', retainMs: 0 },
  device_enrollments: { field: 'expires_at', retainMs: DAY_MS },
  runs: { field: 'expires_at', retainMs: DAY_MS },
} as const satisfies {
  readonly [C in CollectionName]?: { field: keyof Collections[C] & string; retainMs: number };
};

export type ExpiringCollection = keyof typeof EXPIRING;

/** The most documents one {@link Store.pruneExpired} call deletes (one Firestore commit). */
export const PRUNE_LIMIT_MAX = 500;

/**
 * An ordered query: the `where` field (if any) equals its value, the documents come ordered by
 * `orderBy`, strictly after `after` when given. One equality at most: it keeps every query
 * within what each Firestore backend we test on answers (and one composite index per query); a
 * condition on a second field is kept as a field of its own (`live_agent_id`).
 */
export interface Query<C extends CollectionName> {
  where?: readonly [field: IndexedField<C>, value: string | boolean];
  orderBy: OrderField<C>;
  after?: string;
  limit: number;
}

/**
 * A page of the audit log, oldest first: events strictly after `after` (a key this store gave,
 * see {@link Store.isAuditKey}), whose `at` is at or after `since` and before `until` (RFC 3339
 * as the service writes it, `Date#toISOString`), at most `limit` (1..{@link AUDIT_PAGE_MAX}).
 */
export interface AuditPageQuery {
  after?: string;
  since?: string;
  until?: string;
  limit: number;
}

/** The most events one {@link Store.auditPage} call reads. */
export const AUDIT_PAGE_MAX = 1000;

/**
 * An audit event read back: its stable id (`event_id` in the API) and its place in the log
 * (`key`, opaque to the core: the order the log is paged in).
 */
export interface AuditRecord {
  key: string;
  event_id: string;
  event: AuditEvent;
}

/** What one {@link Store.backfillAuditOrder} call did, and where the next one resumes. */
export interface AuditBackfill {
  scanned: number;
  updated: number;
  /** The id to resume after, or null when the whole log has been scanned. */
  next: string | null;
}

/** A document together with its id. */
export interface Found<C extends CollectionName> {
  id: string;
  doc: Collections[C];
}

/** Reads available both inside and outside a transaction. */
export interface StoreReader {
  /** The document, or null when it does not exist. */
  get<C extends CollectionName>(collection: C, id: string): Promise<Collections[C] | null>;
  /** Documents whose indexed `field` equals `value`, at most `limit` of them, in no set order. */
  find<C extends CollectionName>(
    collection: C,
    field: IndexedField<C>,
    value: string,
    limit: number,
  ): Promise<Found<C>[]>;
  /** The first `limit` documents of an ordered query (see {@link Query}). */
  query<C extends CollectionName>(collection: C, query: Query<C>): Promise<Found<C>[]>;
}

/** A transaction: reads first, then buffered writes that commit together with the audit. */
export interface Tx extends StoreReader {
  /** Creates or replaces a document when the transaction commits. */
  set<C extends CollectionName>(collection: C, id: string, doc: Collections[C]): void;
  /** Deletes a document when the transaction commits. */
  delete(collection: CollectionName, id: string): void;
  /** Appends an audit event, committed with the change or not at all. */
  audit(event: AuditEvent): void;
}

/** The store. Reads outside a transaction see committed data only. */
export interface Store extends StoreReader {
  /** Which adapter this is, for logs and health. */
  readonly kind: 'sqlite' | 'firestore';
  /**
   * Appends audit events of reads (which change nothing else) and resolves once they are
   * committed; rejects if they cannot be, so the caller can fail closed (never return a value
   * whose read was not recorded). Adapters may commit concurrent appends together.
   */
  appendAudit(events: readonly AuditEvent[]): Promise<void>;
  /** Runs `fn` in a transaction and commits its writes and audit events atomically. */
  transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Up to `limit` documents of a collection in id order, after `afterId` (null: from the
   * start). For resumable maintenance jobs such as rewrap, not for requests.
   */
  scan<C extends CollectionName>(
    collection: C,
    afterId: string | null,
    limit: number,
  ): Promise<Found<C>[]>;
  /**
   * Deletes up to `limit` (1..{@link PRUNE_LIMIT_MAX}) documents of an expiring collection whose
   * expiry field ({@link EXPIRING}) is before `beforeIso` (RFC 3339; compared as stored, as text),
   * and answers how many it deleted. Unaudited housekeeping outside requests (core/prune.ts).
   */
  pruneExpired(collection: ExpiringCollection, beforeIso: string, limit: number): Promise<number>;
  /** True when the collection holds no document (start-up checks, not requests). */
  isEmpty(collection: CollectionName): Promise<boolean>;
  /** Up to `limit` audit events, in no set order (sort by `at`). For tests and exports, not requests. */
  auditEvents(limit: number): Promise<AuditEvent[]>;
  /**
   * One page of the audit log in its own order, oldest first (see {@link AuditPageQuery}).
   * SQLite: by commit sequence (a page after a key sees every event committed since). Firestore:
   * by `order_key` (`at`, `~`, the random document id), the one indexed field of the collection
   * (an event committed late with an `at` before a key already passed is missed after it). Events without an order key (written before it
   * existed) are left out until {@link backfillAuditOrder} has given them one.
   */
  auditPage(query: AuditPageQuery): Promise<AuditRecord[]>;
  /** True when `key` has the shape of this store's audit keys (a cursor is checked with it). */
  isAuditKey(key: string): boolean;
  /**
   * Upgrade: gives up to `limit` audit events after document id `afterId` (null: from the start)
   * the order key {@link auditPage} reads by, where they lack it; idempotent and resumable. A
   * no-op on SQLite, whose log is ordered by its sequence.
   */
  backfillAuditOrder(afterId: string | null, limit: number): Promise<AuditBackfill>;
  /** Releases connections. */
  close(): Promise<void>;
}
