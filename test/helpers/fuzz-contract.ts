/**
 * The API contract as the fuzzer checks it, written out independently of the code under test:
 * the error table, who may call each route, and what a refused request may write (whole-store
 * snapshots compared before and after).
 */
import {
  INDEXED_FIELDS,
  type CollectionName,
  type Store,
} from '../../functions/src/ports/store.js';
import type { Route } from '../../functions/src/routes/route.js';
import { CONTRACT_ERROR_STATUS } from './contract-errors.js';

/** The error table of the API contract, written out independently of the code under test. */
export const API_ERROR_STATUS = CONTRACT_ERROR_STATUS;

/**
 * Who may call each route, from the route table of docs/api.md and its runs section (an oracle
 * independent of the route table under test). `none`: no header credential is read (public
 * documents, and /device/enroll whose credential is the code in the body). A route missing
 * here (added later) falls back to its declared policy.
 */
const AGENT_CALLERS = ['device', 'token', 'run', 'delegated'];
export const EXPECTED_CALLERS: Readonly<Record<string, readonly string[] | 'none'>> = {
  '/agents/create': ['bridge'],
  '/agents/get': ['bridge', ...AGENT_CALLERS],
  '/agents/disable': ['bridge'],
  '/agents/enable': ['bridge'],
  '/device/issue': ['bridge', 'device'],
  '/device/revoke': ['bridge', 'device'],
  '/device/enrollments/create': ['bridge'],
  '/device/enroll': 'none',
  '/attestations/verify': ['bridge', ...AGENT_CALLERS],
  '/delegate': ['device', 'token'],
  '/delegate/revoke': ['bridge', 'device', 'token'],
  '/secrets/put': ['bridge', ...AGENT_CALLERS],
  '/secrets/get': AGENT_CALLERS,
  '/secrets/list': ['bridge', ...AGENT_CALLERS],
  '/secrets/metadata': ['bridge', ...AGENT_CALLERS],
  '/secrets/delete': ['bridge', ...AGENT_CALLERS],
  '/secrets/undelete': ['bridge', ...AGENT_CALLERS],
  '/secrets/destroy': ['bridge', ...AGENT_CALLERS],
  '/secrets/resolve': AGENT_CALLERS,
  '/secrets/grant': ['bridge'],
  '/secrets/ungrant': ['bridge'],
  '/tokens/register': ['bridge'],
  '/settings/list': ['bridge'],
  '/settings/set': ['bridge'],
  '/runs/spawn': ['device', 'token', 'run'],
  '/runs/complete': ['run'],
  '/runs/revoke': ['bridge', 'device', 'run'],
  '/.well-known/agentpack-identity': 'none',
  '/.well-known/agentpack-agent-identity/': 'none',
  '/healthz': 'none',
};

export function expectedCallers(route: Route): readonly string[] | 'none' {
  const known = EXPECTED_CALLERS[route.path];
  if (known !== undefined) return known;
  return typeof route.policy === 'string' ? 'none' : route.policy;
}

const COLLECTIONS = Object.keys(INDEXED_FIELDS) as CollectionName[];
const SCAN_LIMIT = 10_000;

/** The whole state of a store: every collection (in id order) and the audit log. */
export interface Snapshot {
  raw: Record<string, Array<{ id?: string }>>;
  text: Record<string, string>;
}

export async function snapshot(store: Store): Promise<Snapshot> {
  const raw: Snapshot['raw'] = {};
  for (const c of COLLECTIONS) {
    const rows = await store.scan(c, null, SCAN_LIMIT);
    if (rows.length >= SCAN_LIMIT) throw new Error(`${c} outgrew the snapshot (${SCAN_LIMIT})`);
    raw[c] = rows;
  }
  raw['audit_events'] = (await store.auditEvents(1_000_000)) as Array<{ id?: string }>;
  const text = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, JSON.stringify(v)]));
  return { raw, text };
}

/** The names of the parts of two snapshots that differ. */
export function changedParts(a: Snapshot, b: Snapshot): string[] {
  return Object.keys({ ...a.text, ...b.text }).filter((k) => a.text[k] !== b.text[k]);
}

/** What a refused request is allowed to write, by the contract. */
export interface AllowedWrites {
  /** The store id of the nonce of a correctly signed request (it is spent even if refused). */
  nonceId?: string;
  /** An enrollment fingerprint mismatch is audited. */
  enrollMismatch?: boolean;
}

/** The changes between two snapshots that a refused request was not allowed to make. */
export function forbiddenChanges(
  before: Snapshot,
  after: Snapshot,
  allowed: AllowedWrites,
): string[] {
  const problems: string[] = [];
  for (const part of changedParts(before, after)) {
    if (part === 'request_nonces' && allowed.nonceId !== undefined) {
      const was = before.raw[part]!.map((r) => JSON.stringify(r));
      const now = after.raw[part]!.filter((r) => r.id !== allowed.nonceId);
      const kept = before.raw[part]!.filter((r) => r.id !== allowed.nonceId);
      if (JSON.stringify(now) === JSON.stringify(kept) && was.length <= after.raw[part]!.length)
        continue;
    }
    if (part === 'audit_events' && allowed.enrollMismatch === true) {
      const added = after.raw[part]!.slice(before.raw[part]!.length) as Array<{ action?: string }>;
      const prefix = JSON.stringify(after.raw[part]!.slice(0, before.raw[part]!.length));
      if (
        prefix === before.text[part] &&
        added.length === 1 &&
        added[0]!.action === 'device.enroll_mismatch'
      ) {
        continue;
      }
    }
    problems.push(part);
  }
  return problems;
}

/** An error body exactly as the contract says: `{error: {code, message, details?}}`. */
export function errorShapeProblem(status: number, body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'not a JSON object';
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'error') return `top-level keys ${keys.join(',')}`;
  const error = (body as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) return 'error is not an object';
  const { code, message, details, ...rest } = error as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return `unexpected error fields ${Object.keys(rest)}`;
  if (typeof code !== 'string' || !(code in API_ERROR_STATUS)) return `unknown code ${code}`;
  if (API_ERROR_STATUS[code] !== status) return `code ${code} with status ${status}`;
  if (typeof message !== 'string' || message.length === 0) return 'no message';
  if (details !== undefined && (typeof details !== 'object' || details === null)) {
    return 'details is not an object';
  }
  return null;
}
