/**
 * `/audit/query`: the audit log, oldest first, keyset-paged over the store's own order of the
 * log ({@link Store.auditPage}: SQLite's commit sequence, Firestore's `order_key`). The time
 * window (`since` inclusive, `until` exclusive) is part of the store query; agent, run, action
 * and category are filters applied while reading, within the scan budget of core/paging.ts (a
 * page may hold fewer events than `limit` with a non-null cursor).
 *
 * An event shows names, ids and versions only, as it was written (ports/audit-event.ts: never a
 * value, a key or a code), plus its `event_id` and, for an event caused by or about a run, the
 * run and its tree's root at the top level.
 */
import type { z } from 'zod';
import { AUDIT_CATEGORIES, type auditQueryRequest } from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { AuditRecord } from '../ports/store.js';
import type { AuditActor, AuditCategory, AuditEvent, AuditTarget } from './audit.js';
import type { CoreDeps } from './deps.js';
import { decodeCursor, encodeCursor, pageLimit, readPage, type Source } from './paging.js';

// The protocol's categories are the store's: a category added to one must be added to the other.
const _sameCategories: [AuditCategory, (typeof AUDIT_CATEGORIES)[number]] extends [
  (typeof AUDIT_CATEGORIES)[number],
  AuditCategory,
]
  ? true
  : never = true;
void _sameCategories;

/** An audit event as the API shows it. */
export interface AuditEventView {
  event_id: string;
  at: string;
  category: AuditEvent['category'];
  action: AuditEvent['action'];
  actor: AuditActor;
  target: AuditTarget;
  /** The run that caused the event, or that it is about. */
  run_id?: string;
  /** The root of that run's tree, when the event was caused within one. */
  root_run_id?: string;
  details?: AuditEvent['details'];
}

/** The latest instant a time in the log can be written as (`Date#toISOString`, 4-digit year). */
const LAST_WRITABLE_MS = Date.parse('9999-12-31T23:59:59.999Z');

/** A bound as the log stores times; `beyond` when it is past every time the log can hold. */
function bound(text: string | undefined): string | undefined | 'beyond' {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (ms > LAST_WRITABLE_MS) return 'beyond';
  // Before year 0 toISOString writes `-0...`, which sorts before every stored time: still right.
  return rfc3339(ms);
}

function matches(event: AuditEvent, filter: z.output<typeof auditQueryRequest>): boolean {
  const { actor, target } = event;
  if (filter.action !== undefined && event.action !== filter.action) return false;
  if (filter.category !== undefined && event.category !== filter.category) return false;
  if (
    filter.agent_id !== undefined &&
    actor.agent_id !== filter.agent_id &&
    actor.for_agent !== filter.agent_id &&
    target.agent_id !== filter.agent_id
  ) {
    return false;
  }
  if (
    filter.run_id !== undefined &&
    actor.run_id !== filter.run_id &&
    actor.root_run_id !== filter.run_id &&
    target.run_id !== filter.run_id
  ) {
    return false;
  }
  return true;
}

function view(record: AuditRecord): AuditEventView {
  const { event } = record;
  const runId = event.actor.run_id ?? event.target.run_id;
  const rootRunId = event.actor.root_run_id;
  return {
    event_id: record.event_id,
    at: event.at,
    category: event.category,
    action: event.action,
    actor: { ...event.actor },
    target: { ...event.target },
    ...(runId === undefined ? {} : { run_id: runId }),
    ...(rootRunId === undefined ? {} : { root_run_id: rootRunId }),
    ...(event.details === undefined ? {} : { details: { ...event.details } }),
  };
}

/** `/audit/query` (bridge): a page of the log, oldest first, filtered. */
export async function queryAudit(
  deps: CoreDeps,
  input: z.output<typeof auditQueryRequest>,
): Promise<{ events: AuditEventView[]; next_cursor: string | null }> {
  const { store } = deps;
  const since = bound(input.since);
  const until = bound(input.until);
  const query = {
    agent_id: input.agent_id,
    run_id: input.run_id,
    action: input.action,
    category: input.category,
    since: input.since === undefined ? undefined : rfc3339(Date.parse(input.since)),
    until: input.until === undefined ? undefined : rfc3339(Date.parse(input.until)),
  };
  const after = decodeCursor('audit/query', query, input.cursor, (key) => store.isAuditKey(key));
  // Nothing the log holds is at or after a time past year 9999.
  if (since === 'beyond') return { events: [], next_cursor: null };
  const source: Source<AuditRecord> = async (from, limit) =>
    (
      await store.auditPage({
        ...(from === undefined ? {} : { after: from }),
        ...(since === undefined ? {} : { since }),
        ...(until === undefined || until === 'beyond' ? {} : { until }),
        limit,
      })
    ).map((record) => ({ key: record.key, item: record }));
  const page = await readPage({
    sources: [source],
    after,
    limit: pageLimit(input.limit),
    keep: (record) => (matches(record.event, input) ? view(record) : null),
  });
  return {
    events: page.items,
    next_cursor: page.next === null ? null : encodeCursor('audit/query', query, page.next),
  };
}
