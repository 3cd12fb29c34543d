/**
 * The walks of `/agents/retire` (core/retire.ts) and the progress they keep. Each walk pages
 * through what the agent holds of one kind, by an ordered query on a field unique per document
 * and present on every one, and changes each page in its own transaction of at most
 * {@link RETIRE_BATCH_WRITES} writes: the items, one audit event per batch (per secret for the
 * shredding) naming what changed, and the agent's progress counter, which the batch adds its
 * count to in that same transaction — so the cumulative counts are exact however often a retire
 * is interrupted or runs concurrently. A walk changes only what is not done yet, so running it
 * again resumes it.
 */
import { rfc3339 } from '../ports/clock.js';
import type {
  AgentDoc,
  CollectionName,
  Collections,
  Found,
  IndexedField,
  OrderField,
  SecretDoc,
  Store,
  Tx,
} from '../ports/store.js';
import { actorOf } from './audit.js';
import { requireAgent } from './agents.js';
import type { CoreDeps } from './deps.js';
import type { Principal } from './principal.js';
import { versionId } from './secrets.js';

/**
 * The most writes (documents and audit events) one transaction of these walks makes. The run
 * walk is run-tree.ts's (200 runs and its event) plus the counter: 202.
 */
export const RETIRE_BATCH_WRITES = 200;

/** Secrets' metadata documents read per transaction of the shredding walk. */
const SECRETS_PAGE = 50;

/** The progress of a retire, kept on the agent record and updated with every batch. */
export interface RetireProgress {
  device_keys: number;
  enrollments: number;
  delegations: number;
  runs: number;
  destroyed_versions: number;
  /** When a call of the retire first finished every walk; null until then. */
  completed_at: string | null;
}

type Counter = Exclude<keyof RetireProgress, 'completed_at'>;

/** The agent record as the retire writes it: the port's record plus its progress. */
export type RetiringAgentDoc = AgentDoc & { retirement?: RetireProgress };

/** The `cause` in the details of every batch event of a retire. */
export const RETIRE_CAUSE = 'agent.retire';

/** The progress of a retire so far (zeros before its first batch). */
export function progressOf(doc: AgentDoc): RetireProgress {
  return (
    (doc as RetiringAgentDoc).retirement ?? {
      device_keys: 0,
      enrollments: 0,
      delegations: 0,
      runs: 0,
      destroyed_versions: 0,
      completed_at: null,
    }
  );
}

/** Adds `n` to one counter of the agent's progress, in `tx`. */
function count(tx: Tx, agent: AgentDoc, counter: Counter, n: number): void {
  if (n === 0) return;
  const progress = progressOf(agent);
  const doc: RetiringAgentDoc = {
    ...agent,
    retirement: { ...progress, [counter]: progress[counter] + n },
  };
  tx.set('agents', agent.agent_id, doc);
}

/**
 * One walk: every document of `collection` whose `where` field equals the agent, in `orderBy`
 * order (a field unique per document and present on every one, so keyset paging neither skips
 * nor repeats a document, and Firestore leaves none out of the ordered query).
 */
interface Walk<C extends CollectionName> {
  collection: C;
  where: readonly [field: IndexedField<C>, value: string];
  orderBy: OrderField<C>;
  /** The document's `orderBy` value: the cursor after it. */
  cursor(doc: Collections[C]): string;
  /** Documents read per transaction. */
  page: number;
  counter: Counter;
  /**
   * Changes the page within `budget` writes. Answers how many documents of the page (from the
   * start) it finished, and how many items it changed, for the counter.
   */
  apply(
    tx: Tx,
    page: Found<C>[],
    at: string,
    budget: number,
  ): { finished: number; changed: number };
}

/** Runs one walk to its end (see {@link Walk}). */
export async function walk<C extends CollectionName>(
  deps: CoreDeps,
  agentId: string,
  spec: Walk<C>,
): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const step = await deps.store.transact(async (tx) => {
      const agent = await requireAgent(tx, agentId);
      const found = await tx.query(spec.collection, {
        where: spec.where,
        orderBy: spec.orderBy,
        ...(after === undefined ? {} : { after }),
        limit: spec.page,
      });
      const at = rfc3339(deps.clock.now());
      // One write is kept for the agent's progress counter.
      const { finished, changed } = spec.apply(tx, found, at, RETIRE_BATCH_WRITES - 1);
      count(tx, agent, spec.counter, changed);
      const last = finished > 0 ? found[finished - 1] : undefined;
      return {
        after: last === undefined ? after : spec.cursor(last.doc),
        more: finished < found.length || found.length === spec.page,
      };
    });
    if (!step.more) return;
    after = step.after;
  }
}

/**
 * A walk that changes each document with one write, and audits each batch with one event
 * naming the ids it changed: pages of `budget - 1` documents.
 */
function simpleWalk<C extends CollectionName>(
  principal: Principal,
  agentId: string,
  spec: Omit<Walk<C>, 'apply' | 'page'> & {
    /** The changed document, or null when it needs no change. */
    change(doc: Collections[C], at: string): Collections[C] | null;
    /** The audit event's action and details of a batch. */
    action: 'device_key.revoke' | 'device.enrollment_expire' | 'delegation.revoke';
    details: (ids: string[]) => Record<string, string | number>;
  },
): Walk<C> {
  return {
    ...spec,
    page: RETIRE_BATCH_WRITES - 2,
    apply(tx, page, at) {
      const ids: string[] = [];
      for (const { id, doc } of page) {
        const next = spec.change(doc, at);
        if (next === null) continue;
        tx.set(spec.collection, id, next);
        ids.push(spec.cursor(doc));
      }
      if (ids.length > 0) {
        tx.audit({
          category: 'auth',
          action: spec.action,
          actor: actorOf(principal),
          target: { agent_id: agentId },
          at,
          details: { cause: RETIRE_CAUSE, ...spec.details(ids) },
        });
      }
      return { finished: page.length, changed: ids.length };
    },
  };
}

export function deviceKeysWalk(principal: Principal, agentId: string): Walk<'device_keys'> {
  return simpleWalk(principal, agentId, {
    collection: 'device_keys',
    where: ['agent_id', agentId],
    orderBy: 'key_id',
    cursor: (doc) => doc.key_id,
    counter: 'device_keys',
    change: (doc, at) => (doc.revoked_at === null ? { ...doc, revoked_at: at } : null),
    action: 'device_key.revoke',
    details: (ids) => ({ revoked: ids.length, key_ids: ids.join(' ') }),
  });
}

/**
 * Unused enrollments expire now (their `expires_at` set to the batch's time): the code is
 * refused as expired from then on, and pruning deletes the record with the other expired ones.
 * Used ones stay as they are (they record which key they made).
 */
export function enrollmentsWalk(principal: Principal, agentId: string): Walk<'device_enrollments'> {
  return simpleWalk(principal, agentId, {
    collection: 'device_enrollments',
    where: ['agent_id', agentId],
    orderBy: 'enrollment_id',
    cursor: (doc) => doc.enrollment_id,
    counter: 'enrollments',
    change: (doc, at) =>
      doc.used_at === null && Date.parse(doc.expires_at) > Date.parse(at)
        ? { ...doc, expires_at: at }
        : null,
    action: 'device.enrollment_expire',
    details: (ids) => ({ expired: ids.length, enrollment_ids: ids.join(' ') }),
  });
}

/** Delegations from (`from_agent`) or to (`to_agent`) the agent, revoked as `/delegate/revoke` does. */
export function delegationsWalk(
  principal: Principal,
  agentId: string,
  field: 'from_agent' | 'to_agent',
): Walk<'delegations'> {
  return simpleWalk(principal, agentId, {
    collection: 'delegations',
    where: [field, agentId],
    orderBy: 'delegation_id',
    cursor: (doc) => doc.delegation_id,
    counter: 'delegations',
    change: (doc, at) =>
      doc.revoked_at === null ? { ...doc, revoked_at: at, live_from_agent: null } : null,
    action: 'delegation.revoke',
    details: (ids) => ({
      direction: field === 'from_agent' ? 'from' : 'to',
      revoked: ids.length,
      delegation_ids: ids.join(' '),
    }),
  });
}

/**
 * Crypto-shredding: every version of every secret of the agent not destroyed yet is destroyed
 * as `/secrets/destroy` does it (its `secret_versions` document, the ciphertext with its wrapped
 * data key, deleted; the version marked `destroyed` in the metadata, which then can never read
 * or undelete it). Without the wrapped key no key service call can bring the value back. One
 * audit event per secret, naming the versions. A secret with more versions than one batch holds
 * is shredded over several transactions, its cursor advancing only once it is done.
 */
export function secretsWalk(principal: Principal, agentId: string): Walk<'secrets'> {
  return {
    collection: 'secrets',
    where: ['agent_id', agentId],
    orderBy: 'name',
    cursor: (doc) => doc.name,
    page: SECRETS_PAGE,
    counter: 'destroyed_versions',
    apply(tx, page, at, budget) {
      let writes = 0;
      let finished = 0;
      let changed = 0;
      for (const { id, doc } of page) {
        const live = doc.versions.filter((v) => !v.destroyed).map((v) => v.version);
        if (live.length === 0) {
          finished++;
          continue;
        }
        // Each secret costs its deletions, its metadata and its audit event.
        const room = budget - writes - 2;
        if (room < 1 || (room < live.length && writes > 0)) break;
        const now = live.slice(0, room);
        destroy(tx, principal, at, id, doc, now);
        writes += now.length + 2;
        changed += now.length;
        if (now.length < live.length) break;
        finished++;
      }
      return { finished, changed };
    },
  };
}

function destroy(
  tx: Tx,
  principal: Principal,
  at: string,
  id: string,
  doc: SecretDoc,
  numbers: number[],
): void {
  const gone = new Set(numbers);
  for (const n of numbers) tx.delete('secret_versions', versionId(doc.agent_id, doc.name, n));
  tx.set('secrets', id, {
    ...doc,
    updated_at: at,
    versions: doc.versions.map((v) =>
      gone.has(v.version) ? { ...v, destroyed: true, deleted_at: v.deleted_at ?? at } : { ...v },
    ),
  });
  tx.audit({
    category: 'secrets',
    action: 'secret.destroy',
    actor: actorOf(principal),
    target: { agent_id: doc.agent_id, secret: doc.name },
    at,
    details: { cause: RETIRE_CAUSE, destroyed: numbers.length, versions: numbers.join(' ') },
  });
}

/**
 * The store as the run walk sees it during a retire: each of its transactions also adds the
 * runs it ended to the agent's progress, in that same transaction (the walk itself is
 * run-tree.ts's, reused as is: it writes a run document exactly for each run it ends). The
 * agent is read before anything else of the transaction, as every store requires.
 */
export function countingRunEnds(store: Store, agentId: string): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== 'transact') {
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return <T>(fn: (tx: Tx) => Promise<T>): Promise<T> =>
        target.transact(async (tx) => {
          const agent = await requireAgent(tx, agentId);
          let ended = 0;
          const counted: Tx = {
            get: (collection, id) => tx.get(collection, id),
            find: (collection, field, value, limit) => tx.find(collection, field, value, limit),
            query: (collection, query) => tx.query(collection, query),
            set: (collection, id, doc) => {
              if (collection === 'runs') ended++;
              tx.set(collection, id, doc);
            },
            delete: (collection, id) => tx.delete(collection, id),
            audit: (event) => tx.audit(event),
          };
          const result = await fn(counted);
          count(tx, agent, 'runs', ended);
          return result;
        });
    },
  });
}
