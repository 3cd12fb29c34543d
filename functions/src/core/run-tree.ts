/**
 * The one walk that ends runs. `/runs/revoke`, `/runs/complete`, `/agents/disable` and the
 * device-key revoke cascade all end runs through {@link endRuns}, so a tree ends whole whatever
 * its size and whatever order the store returns documents in:
 *
 * - the runs are read by an ordered query, keyset-paged on `run_id` (unique), so each page
 *   starts strictly after the last run seen and no run is skipped or read twice;
 * - each page is read and written in its own transaction of at most {@link RUN_BATCH} writes,
 *   far inside a Firestore transaction's limit, so any tree fits;
 * - each transaction audits exactly the runs whose state it changed (none: no event).
 *
 * An interrupted walk leaves no live descendant behind: every use of a run also checks its
 * lineage and its spawning key ({@link runStatus}), so the runs the walk has not reached yet
 * are already refused; calling the same operation again resumes the walk (runs already ended
 * keep their first ending and are not counted again).
 */
import { rfc3339 } from '../ports/clock.js';
import type { AuditEvent } from '../ports/audit-event.js';
import type { IndexedField, RunDoc, RunEnd } from '../ports/store.js';
import type { CoreDeps } from './deps.js';

/** A run as it is once ended (`how`, at `at`): out of the index of live runs too. */
export function endedRun(doc: RunDoc, how: RunEnd, at: string): RunDoc {
  return { ...doc, ended: how, ended_at: at, live_agent_id: null };
}

/** Runs read and ended per transaction. */
export const RUN_BATCH = 200;

/** Which runs a walk covers: every run matching `where`, narrowed by `include`. */
export interface RunSelection {
  where: readonly [field: IndexedField<'runs'>, value: string];
  include?: (doc: RunDoc) => boolean;
}

/** The audit event of one batch: the caller names the action; the walk adds what changed. */
export type BatchAudit = Omit<AuditEvent, 'at' | 'details'> & {
  details?: Record<string, string | number | boolean | null>;
};

/**
 * Ends (`how`) every selected run not ended yet, page by page, and answers the ids of the runs
 * whose state changed, root first then by depth.
 */
export async function endRuns(
  deps: CoreDeps,
  selection: RunSelection,
  how: RunEnd,
  audit: BatchAudit,
): Promise<string[]> {
  const changed: Array<{ run_id: string; depth: number }> = [];
  let after: string | undefined;
  for (;;) {
    const page = await deps.store.transact(async (tx) => {
      const found = await tx.query('runs', {
        where: selection.where,
        orderBy: 'run_id',
        ...(after === undefined ? {} : { after }),
        limit: RUN_BATCH,
      });
      const at = rfc3339(deps.clock.now());
      const ended: RunDoc[] = [];
      for (const { id, doc } of found) {
        if (doc.ended !== null || (selection.include !== undefined && !selection.include(doc)))
          continue;
        tx.set('runs', id, endedRun(doc, how, at));
        ended.push(doc);
      }
      if (ended.length > 0) {
        tx.audit({
          ...audit,
          at,
          details: {
            ...audit.details,
            ended: ended.length,
            run_ids: ended.map((d) => d.run_id).join(' '),
          },
        });
      }
      return { last: found.at(-1)?.doc.run_id, full: found.length === RUN_BATCH, ended };
    });
    for (const doc of page.ended) changed.push({ run_id: doc.run_id, depth: doc.lineage.length });
    if (!page.full || page.last === undefined) break;
    after = page.last;
  }
  return changed.sort((a, b) => a.depth - b.depth).map((c) => c.run_id);
}
