/**
 * Pruning: deletes what has expired, per the port's {@link EXPIRING} declaration — request
 * nonces at their expiry, enrollments and runs a day after theirs. Housekeeping, not a change
 * anyone made: it writes no audit event (the audit trail itself is never pruned, and the events
 * about each run and enrollment stay); the caller logs the counts. Never on the request path:
 * the local server runs it at start and on a timer, operators with `maintenance prune`; on Cloud
 * Functions Firestore's TTL policies do the same work and nothing calls this.
 */
import { rfc3339 } from '../ports/clock.js';
import { EXPIRING, PRUNE_LIMIT_MAX, type ExpiringCollection } from '../ports/store.js';
import type { CoreDeps } from './deps.js';

/** How many documents were deleted, per collection. */
export type PruneCounts = Record<ExpiringCollection, number>;

/** The most rounds one call makes per collection: bounded work, the next call goes on. */
export const PRUNE_MAX_ROUNDS = 20;

/**
 * Deletes, in each expiring collection, the documents whose expiry plus retention is before the
 * clock's now, `limitPerCollection` at a time, until a round deletes fewer than that (or after
 * {@link PRUNE_MAX_ROUNDS} rounds). Answers how many went from each collection.
 */
export async function pruneExpired(
  deps: Pick<CoreDeps, 'store' | 'clock'>,
  limitPerCollection: number = PRUNE_LIMIT_MAX,
): Promise<PruneCounts> {
  if (
    !Number.isInteger(limitPerCollection) ||
    limitPerCollection < 1 ||
    limitPerCollection > PRUNE_LIMIT_MAX
  ) {
    throw new Error(`the limit must be a whole number from 1 to ${PRUNE_LIMIT_MAX}`);
  }
  const nowMs = deps.clock.now();
  const counts = {} as PruneCounts;
  for (const collection of Object.keys(EXPIRING) as ExpiringCollection[]) {
    const before = rfc3339(nowMs - EXPIRING[collection].retainMs);
    let total = 0;
    for (let round = 0; round < PRUNE_MAX_ROUNDS; round++) {
      const deleted = await deps.store.pruneExpired(collection, before, limitPerCollection);
      total += deleted;
      if (deleted < limitPerCollection) break;
    }
    counts[collection] = total;
  }
  return counts;
}
