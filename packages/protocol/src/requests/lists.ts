/**
 * Requests of the operator plane's lists and the audit query. Every list takes `{cursor?,
 * limit?}`: `limit` 1–200 (default 50), `cursor` the opaque `next_cursor` of the page before.
 * The cursor's meaning (which route, which query, where) is the service's: here only its shape.
 */
import { z } from 'zod';
import { agentIdField, runIdField } from './fields.js';

/** The most items one page of a list holds, and how many when `limit` is left out. */
export const LIST_LIMIT_MAX = 200;
export const LIST_LIMIT_DEFAULT = 50;

/** How many items a page may hold: a whole number from 1 to {@link LIST_LIMIT_MAX}. */
export const listLimitField = z
  .number()
  .int('limit must be a whole number')
  .min(1, `limit must be from 1 to ${LIST_LIMIT_MAX}`)
  .max(LIST_LIMIT_MAX, `limit must be from 1 to ${LIST_LIMIT_MAX}`);

/** An opaque cursor: the `next_cursor` of the page before (base64url segments and dots). */
export const cursorField = z
  .string()
  .min(1, 'cursor must not be empty')
  .max(1024, 'cursor is not a cursor of this service')
  .regex(/^[A-Za-z0-9_.-]+$/, 'cursor is not a cursor of this service');

const page = { cursor: cursorField.optional(), limit: listLimitField.optional() };

/**
 * An instant: RFC 3339 with a `Z` or numeric offset, at most millisecond precision (the
 * precision of every time the service writes), so a bound never falls between two instants it
 * can tell apart.
 */
const RFC3339 =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/** True when the calendar date at the start of an RFC 3339 time exists (no 30 February). */
function dateExists(text: string): boolean {
  const [y, m, d] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d;
}

export const instantField = (field: string) =>
  z
    .string()
    .regex(RFC3339, `${field} must be an RFC 3339 time, such as 2026-01-01T00:00:00Z`)
    .refine((text) => dateExists(text), `${field} is not a date of the calendar`);

/** `POST /agents/list` (bridge). */
export const agentsListRequest = z.strictObject({ disabled: z.boolean().optional(), ...page });

/** `POST /device/list`: the bridge names the agent; a device key lists its own. */
export const deviceListRequest = z.strictObject({
  agent_id: agentIdField.optional(),
  include_revoked: z.boolean().optional(),
  ...page,
});

/** Which delegations of an agent: those it gave (`from`), received (`to`) or both. */
export const DELEGATION_DIRECTIONS = ['from', 'to', 'both'] as const;

/** `POST /delegations/list`: the bridge names the agent; an agent lists its own. */
export const delegationsListRequest = z.strictObject({
  agent_id: agentIdField.optional(),
  direction: z.enum(DELEGATION_DIRECTIONS).optional(),
  include_inactive: z.boolean().optional(),
  ...page,
});

/** Which runs: live ones, ended ones (completed, revoked or expired) or all. */
export const RUN_LIST_STATUSES = ['active', 'ended', 'all'] as const;

/** `POST /runs/list`: the bridge names the agent; an agent lists its own. */
export const runsListRequest = z.strictObject({
  agent_id: agentIdField.optional(),
  status: z.enum(RUN_LIST_STATUSES).optional(),
  root_run_id: runIdField.optional(),
  ...page,
});

/** The categories of audit events. */
export const AUDIT_CATEGORIES = ['auth', 'settings', 'secrets'] as const;

/** An audit action: `noun.verb`, lowercase words (`device_key.revoke`, `secret.get`). */
export const auditActionField = z
  .string()
  .max(64, 'action must be at most 64 characters')
  .regex(/^[a-z][a-z_]*\.[a-z][a-z_]*$/, 'action must be of the form noun.verb, e.g. secret.get');

/**
 * `POST /audit/query` (bridge): events oldest first, filtered by agent, run, action, category
 * and time (`since` inclusive, `until` exclusive).
 */
export const auditQueryRequest = z
  .strictObject({
    agent_id: agentIdField.optional(),
    run_id: runIdField.optional(),
    action: auditActionField.optional(),
    category: z.enum(AUDIT_CATEGORIES).optional(),
    since: instantField('since').optional(),
    until: instantField('until').optional(),
    ...page,
  })
  .refine(
    (q) =>
      q.since === undefined || q.until === undefined || Date.parse(q.since) < Date.parse(q.until),
    { message: 'since must be before until', path: ['until'] },
  );
