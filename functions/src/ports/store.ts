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
import type { AuditEvent } from '../core/audit.js';

/** An agent record: `agents/{agent_id}`. */
export interface AgentDoc {
  agent_id: string;
  display_name: string;
  disabled: boolean;
  created_at: string;
  updated_at: string;
}

/**
 * A device key record: `device_keys/{key_digest}`. The document id is the digest of the key,
 * which is also the lookup index; the clear key is never stored. `key_id` is the public handle
 * for listing and revoking.
 */
export interface DeviceKeyDoc {
  key_id: string;
  agent_id: string;
  label: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

/**
 * Every collection and the shape of its documents. Later capabilities add theirs here
 * (delegations, secrets and their versions, settings, capability_tokens).
 */
export interface Collections {
  agents: AgentDoc;
  device_keys: DeviceKeyDoc;
}

export type CollectionName = keyof Collections;

/**
 * Fields a collection can be queried by equality. Each has an index in both stores
 * (SQLite: an expression index; Firestore: the automatic single-field index).
 */
export const INDEXED_FIELDS = {
  agents: [],
  device_keys: ['key_id', 'agent_id'],
} as const satisfies { [C in CollectionName]: readonly (keyof Collections[C] & string)[] };

export type IndexedField<C extends CollectionName> = (typeof INDEXED_FIELDS)[C][number];

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
  /** Runs `fn` in a transaction and commits its writes and audit events atomically. */
  transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Up to `limit` audit events, in no set order (sort by `at`). For tests and exports, not requests. */
  auditEvents(limit: number): Promise<AuditEvent[]>;
  /** Releases connections. */
  close(): Promise<void>;
}
