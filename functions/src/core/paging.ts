/**
 * Keyset paging, shared by every list and the audit query: cursors and the bounded read of a
 * page.
 *
 * **Order and cursors.** Every list reads one or more ordered queries of the store, each by a
 * key unique per item (`list_key`: creation time then id; `agent_id`; the audit log's own key).
 * The cursor names the key of the last item the previous page *read*; the next page reads
 * strictly after it. So no item is listed twice, none that existed when the listing began is
 * missed, and an item added meanwhile is listed on a later page when its key sorts after the
 * cursor (new device keys, delegations and runs do: their key starts with their creation
 * time) and not when it sorts before (a new agent whose id is earlier in the alphabet).
 * Keys of several sources are merged in UTF-16 code unit order, which is the stores' byte order
 * for the ASCII keys of every list.
 *
 * **Filters in memory, within a budget.** Conditions the query cannot carry (the store takes one
 * equality at most) are applied while reading, up to {@link SCAN_FACTOR} × `limit` items read;
 * a page may then hold fewer than `limit` items (even none) with a non-null `next_cursor`: only
 * a null `next_cursor` means the end. Each call reads a bounded number of documents whatever the
 * data.
 *
 * **What a cursor is.** `base64url(JSON {v, r, q, k})` + `.` + a check: `r` the RPC, `q` a
 * digest of the query (the agent and the filters), `k` the key. A cursor given to another route,
 * to the same route with another query, or altered or cut (its check no longer matches) is 400.
 * The check is a plain digest, not a MAC: a cursor is not a credential, only a position in a
 * query the caller is already allowed to read, so a cursor made by hand gains nothing that
 * paging would not give.
 */
import { createHash } from 'node:crypto';
import { LIST_LIMIT_DEFAULT } from '@agentpack-identity/protocol';
import { ApiError } from './errors.js';

/** How many items a page may read per item it returns, at most (the scan budget). */
export const SCAN_FACTOR = 5;

/** The longest key a cursor carries (list keys and audit keys are far shorter). */
const KEY_MAX = 400;

function check(payload: string): string {
  return createHash('sha256')
    .update(`agentpack-cursor-v1\n${payload}`)
    .digest()
    .subarray(0, 12)
    .toString('base64url');
}

/** The digest of a query: the agent and the filters a cursor belongs to. */
function queryDigest(query: Record<string, unknown>): string {
  const canonical = JSON.stringify(
    Object.keys(query)
      .sort()
      .map((k) => [k, query[k] ?? null]),
  );
  return createHash('sha256').update(canonical).digest().subarray(0, 9).toString('base64url');
}

/** The cursor of a page that ended after `key`. */
export function encodeCursor(rpc: string, query: Record<string, unknown>, key: string): string {
  const payload = Buffer.from(
    JSON.stringify({ v: 1, r: rpc, q: queryDigest(query), k: key }),
    'utf8',
  ).toString('base64url');
  return `${payload}.${check(payload)}`;
}

function badCursor(message: string): never {
  throw new ApiError('invalid_argument', message, { field: 'cursor' });
}

/**
 * The key a cursor resumes after, or undefined without a cursor. 400 when the cursor is not one
 * this service made for this route and query, or when `validKey` refuses its key.
 */
export function decodeCursor(
  rpc: string,
  query: Record<string, unknown>,
  cursor: string | undefined,
  validKey: (key: string) => boolean = () => true,
): string | undefined {
  if (cursor === undefined) return undefined;
  const [payload, sum, ...rest] = cursor.split('.');
  if (payload === undefined || sum === undefined || rest.length > 0 || check(payload) !== sum) {
    badCursor('cursor is not a cursor of this service');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return badCursor('cursor is not a cursor of this service');
  }
  const { v, r, q, k } = (parsed ?? {}) as Record<string, unknown>;
  if (v !== 1 || typeof k !== 'string' || k.length === 0 || k.length > KEY_MAX || !validKey(k)) {
    badCursor('cursor is not a cursor of this service');
  }
  if (r !== rpc) badCursor(`cursor belongs to another list, not ${rpc}`);
  if (q !== queryDigest(query)) {
    badCursor('cursor belongs to the same list with other filters: start again without it');
  }
  return k;
}

/** One item of an ordered source, with the key it is ordered by. */
export interface Keyed<T> {
  key: string;
  item: T;
}

/** An ordered source: up to `limit` items strictly after `after` (undefined: from the start). */
export type Source<T> = (after: string | undefined, limit: number) => Promise<Keyed<T>[]>;

export interface Page<T> {
  items: T[];
  /** The key of the last item read, when more may follow; null at the end. */
  next: string | null;
}

interface Stream<T> {
  source: Source<T>;
  buffer: Keyed<T>[];
  after: string | undefined;
  done: boolean;
}

/**
 * Reads one page: the items of `sources` merged in key order (an item in several sources, such
 * as a delegation both from and to the agent, counts once), after `after`, kept when `keep`
 * says so, until `limit` are kept or {@link SCAN_FACTOR} × `limit` have been read.
 */
export async function readPage<T, U = T>(options: {
  sources: readonly Source<T>[];
  after: string | undefined;
  limit: number;
  /** The item to return, or null to leave it out. */
  keep: (item: T) => U | null | Promise<U | null>;
}): Promise<Page<U>> {
  const { limit } = options;
  const budget = SCAN_FACTOR * limit;
  // One more than a page, so a full page usually also tells whether anything follows.
  const batch = limit + 1;
  const streams: Stream<T>[] = options.sources.map((source) => ({
    source,
    buffer: [],
    after: options.after,
    done: false,
  }));
  const head = async (s: Stream<T>): Promise<Keyed<T> | undefined> => {
    if (s.buffer.length === 0 && !s.done) {
      const got = await s.source(s.after, batch);
      s.done = got.length < batch;
      s.buffer = got;
      if (got.length > 0) s.after = got.at(-1)!.key;
    }
    return s.buffer[0];
  };
  const items: U[] = [];
  let last: string | undefined = options.after;
  let read = 0;
  for (;;) {
    const heads = await Promise.all(streams.map(head));
    let next: Keyed<T> | undefined;
    for (const h of heads)
      if (h !== undefined && (next === undefined || h.key < next.key)) next = h;
    if (next === undefined) return { items, next: null };
    if (items.length >= limit || read >= budget) return { items, next: last ?? null };
    for (const s of streams) if (s.buffer[0]?.key === next.key) s.buffer.shift();
    read++;
    last = next.key;
    const kept = await options.keep(next.item);
    if (kept !== null) items.push(kept);
  }
}

/** The page size of a request: its `limit`, or the default. */
export function pageLimit(limit: number | undefined): number {
  return limit ?? LIST_LIMIT_DEFAULT;
}
