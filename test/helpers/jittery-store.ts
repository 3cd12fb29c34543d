/**
 * A store wrapper that yields to the event loop (setImmediate, a random 0–3 times) before and
 * after every read, inside and outside transactions: the read happens in the middle of its
 * latency, as over a network, so the value a caller acts on may already be stale. The embedded
 * SQLite store answers synchronously, so in one process a request otherwise runs from
 * authentication to commit without letting any other request in, and races never interleave.
 * With this wrapper they do, as they would over a networked store like Firestore: a check made
 * before a transaction can be overtaken by another request's commit. It changes timing only,
 * never results.
 */
import type { Store, Tx } from '../../functions/src/ports/store.js';

function hops(): Promise<void> {
  const n = Math.floor(Math.random() * 4);
  let p = Promise.resolve();
  for (let i = 0; i < n; i++) p = p.then(() => new Promise<void>((r) => setImmediate(r)));
  return p;
}

/** Runs `read` after some hops and answers after some more. */
async function late<T>(read: () => Promise<T>): Promise<T> {
  await hops();
  const value = await read();
  await hops();
  return value;
}

function jitteryTx(tx: Tx): Tx {
  return {
    get: (collection, id) => late(() => tx.get(collection, id)),
    find: (collection, field, value, limit) => late(() => tx.find(collection, field, value, limit)),
    query: (collection, query) => late(() => tx.query(collection, query)),
    set: (collection, id, doc) => tx.set(collection, id, doc),
    delete: (collection, id) => tx.delete(collection, id),
    audit: (event) => tx.audit(event),
  };
}

export function jitteryStore(store: Store): Store {
  return {
    kind: store.kind,
    get: (collection, id) => late(() => store.get(collection, id)),
    find: (collection, field, value, limit) =>
      late(() => store.find(collection, field, value, limit)),
    query: (collection, query) => late(() => store.query(collection, query)),
    async appendAudit(events) {
      await hops();
      return store.appendAudit(events);
    },
    transact: (fn) => store.transact((tx) => fn(jitteryTx(tx))),
    scan: (collection, afterId, limit) => store.scan(collection, afterId, limit),
    pruneExpired: (collection, beforeIso, limit) =>
      store.pruneExpired(collection, beforeIso, limit),
    isEmpty: (collection) => store.isEmpty(collection),
    auditEvents: (limit) => store.auditEvents(limit),
    auditPage: (query) => late(() => store.auditPage(query)),
    isAuditKey: (key) => store.isAuditKey(key),
    backfillAuditOrder: (afterId, limit) => store.backfillAuditOrder(afterId, limit),
    close: () => store.close(),
  };
}
