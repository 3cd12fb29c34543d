/**
 * The operator plane's lists: agents, an agent's device keys, delegations and runs. Each is
 * keyset-paged over an ordered store query (core/paging.ts: cursors, the scan budget), in a
 * stable order: agents by `agent_id`; device keys, delegations and runs by creation time, then
 * id (their `list_key`). No list shows a key, a code, a digest or a secret value: each item is
 * built field by field here, never a stored document passed through.
 *
 * Who may list what is the route table's (routes/lists.ts); the agent a list is about comes in
 * resolved (an agent-bound caller's own, or the one the bridge named, which must exist).
 */
import type { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  type agentsListRequest,
  type delegationsListRequest,
  type deviceListRequest,
  type runsListRequest,
} from '@agentpack-identity/protocol';
import type {
  CollectionName,
  Collections,
  Found,
  IndexedField,
  OrderField,
  RunDoc,
  StoreReader,
} from '../ports/store.js';
import { agentView, requireAgent, type Agent } from './agents.js';
import type { CoreDeps } from './deps.js';
import { delegationView, type Delegation } from './delegations.js';
import { decodeCursor, encodeCursor, pageLimit, readPage, type Source } from './paging.js';
import { runStatus, type RunStatus } from './runs.js';

/** A device key as a list shows it: its handle and state, never the key or its digest. */
export interface DeviceKeyItem {
  key_id: string;
  agent_id: string;
  label: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  /** True for an enrolled device (pinned public keys), false for a plain bearer key. */
  enrolled: boolean;
  fingerprint: string | null;
}

/** A delegation as a list shows it: its API view and whether (when) it was revoked. */
export type DelegationItem = Delegation & { revoked_at: string | null };

export interface RunItem {
  run_id: string;
  agent_id: string;
  parent_run_id: string | null;
  root_run_id: string;
  task: string;
  scope: string[];
  status: RunStatus;
  created_at: string;
  expires_at: string;
}

/** The first page, or the one after a cursor, of a list. */
interface ListArgs {
  cursor?: string | undefined;
  limit?: number | undefined;
}

/** An ordered query of the store as a paging source, keyed by its order field. */
export function querySource<C extends CollectionName>(
  reader: StoreReader,
  collection: C,
  orderBy: OrderField<C>,
  where?: readonly [IndexedField<C>, string | boolean],
): Source<Found<C>> {
  return async (after, limit) => {
    const found = await reader.query(collection, {
      ...(where === undefined ? {} : { where }),
      orderBy,
      ...(after === undefined ? {} : { after }),
      limit,
    });
    return found.map((f) => ({
      key: String((f.doc as Collections[C] & Record<string, unknown>)[orderBy]),
      item: f,
    }));
  };
}

/** The shape of a list key (creation time `|` id): a cursor's key must have it. */
const LIST_KEY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\|[A-Za-z0-9_-]{1,64}$/;
const isListKey = (key: string): boolean => LIST_KEY.test(key);
const isAgentKey = (key: string): boolean => AGENT_ID_PATTERN.test(key);

/**
 * Runs a list: decode the cursor, read a page, encode the next cursor. A cursor's key goes into
 * the store's range condition, so `validKey` admits only keys of the list's own shape.
 */
export async function list<T, U>(
  rpc: string,
  query: Record<string, unknown>,
  args: ListArgs,
  sources: readonly Source<T>[],
  keep: (item: T) => U | null | Promise<U | null>,
  validKey: (key: string) => boolean = isListKey,
): Promise<{ items: U[]; next_cursor: string | null }> {
  const after = decodeCursor(rpc, query, args.cursor, validKey);
  const page = await readPage({ sources, after, limit: pageLimit(args.limit), keep });
  return {
    items: page.items,
    next_cursor: page.next === null ? null : encodeCursor(rpc, query, page.next),
  };
}

/**
 * The agent a list is about: an agent-bound caller's own (it exists: its credential was just
 * verified against it), or the one the bridge named, 404 when there is none.
 */
export async function listedAgent(
  deps: CoreDeps,
  agentId: string,
  byBridge: boolean,
): Promise<string> {
  if (byBridge) await requireAgent(deps.store, agentId);
  return agentId;
}

/** `/agents/list`: every agent by `agent_id`, or only the disabled (or enabled) ones. */
export async function listAgents(
  deps: CoreDeps,
  input: z.output<typeof agentsListRequest>,
): Promise<{ agents: Agent[]; next_cursor: string | null }> {
  const source = querySource(
    deps.store,
    'agents',
    'agent_id',
    input.disabled === undefined ? undefined : ['disabled', input.disabled],
  );
  const { items, next_cursor } = await list(
    'agents/list',
    { disabled: input.disabled },
    input,
    [source],
    (f) => agentView(f.doc),
    isAgentKey,
  );
  return { agents: items, next_cursor };
}

/** `/device/list`: an agent's device keys by creation time; revoked ones only on request. */
export async function listDeviceKeys(
  deps: CoreDeps,
  agentId: string,
  input: z.output<typeof deviceListRequest>,
): Promise<{ keys: DeviceKeyItem[]; next_cursor: string | null }> {
  const includeRevoked = input.include_revoked ?? false;
  const { items, next_cursor } = await list(
    'device/list',
    { agent_id: agentId, include_revoked: includeRevoked },
    input,
    [querySource(deps.store, 'device_keys', 'list_key', ['agent_id', agentId])],
    ({ doc }): DeviceKeyItem | null =>
      !includeRevoked && doc.revoked_at !== null
        ? null
        : {
            key_id: doc.key_id,
            agent_id: doc.agent_id,
            label: doc.label,
            created_at: doc.created_at,
            expires_at: doc.expires_at,
            revoked_at: doc.revoked_at,
            enrolled: (doc.sealing_public_key ?? null) !== null,
            fingerprint: doc.fingerprint ?? null,
          },
  );
  return { keys: items, next_cursor };
}

/**
 * `/delegations/list`: the delegations an agent gave (`from`), received (`to`) or both (the
 * default; two queries merged in one order), by creation time. Only live ones (neither revoked
 * nor expired) unless `include_inactive`.
 */
export async function listDelegations(
  deps: CoreDeps,
  agentId: string,
  input: z.output<typeof delegationsListRequest>,
): Promise<{ delegations: DelegationItem[]; next_cursor: string | null }> {
  const direction = input.direction ?? 'both';
  const includeInactive = input.include_inactive ?? false;
  const nowMs = deps.clock.now();
  const sources: Source<Found<'delegations'>>[] = [];
  if (direction !== 'to') {
    sources.push(querySource(deps.store, 'delegations', 'list_key', ['from_agent', agentId]));
  }
  if (direction !== 'from') {
    sources.push(querySource(deps.store, 'delegations', 'list_key', ['to_agent', agentId]));
  }
  const { items, next_cursor } = await list(
    'delegations/list',
    { agent_id: agentId, direction, include_inactive: includeInactive },
    input,
    sources,
    ({ doc }): DelegationItem | null => {
      const live = doc.revoked_at === null && Date.parse(doc.expires_at) > nowMs;
      if (!live && !includeInactive) return null;
      return { ...delegationView(doc), revoked_at: doc.revoked_at };
    },
  );
  return { delegations: items, next_cursor };
}

/**
 * A reader that remembers what it read, for one request: the runs of a page share ancestors and
 * spawning keys, so each status check ({@link runStatus}) reads each of them once.
 */
function memoReader(reader: StoreReader): StoreReader {
  const gets = new Map<string, Promise<unknown>>();
  const finds = new Map<string, Promise<unknown>>();
  return {
    get: (collection, id) => {
      const key = `${collection}/${id}`;
      if (!gets.has(key)) gets.set(key, reader.get(collection, id));
      return gets.get(key) as never;
    },
    find: (collection, field, value, limit) => {
      const key = `${collection}/${field}/${value}/${limit}`;
      if (!finds.has(key)) finds.set(key, reader.find(collection, field, value, limit));
      return finds.get(key) as never;
    },
    query: (collection, query) => reader.query(collection, query),
  };
}

/**
 * `/runs/list`: an agent's runs by creation time, with their status as every use of a run
 * checks it (its lineage and spawning key included). `status` `active` (the default), `ended`
 * (completed, revoked or expired) or `all`; `root_run_id` narrows to one tree. Active runs are
 * read from the index of live runs; the rest from all of the agent's runs.
 */
export async function listRuns(
  deps: CoreDeps,
  agentId: string,
  input: z.output<typeof runsListRequest>,
  /** A run caller's own tree: it lists that tree only (another `root_run_id` lists empty). */
  ownTree: string | null = null,
): Promise<{ runs: RunItem[]; next_cursor: string | null }> {
  const status = input.status ?? 'active';
  const rootRunId = input.root_run_id ?? ownTree;
  const query = { agent_id: agentId, status, root_run_id: rootRunId };
  if (ownTree !== null && rootRunId !== ownTree) {
    decodeCursor('runs/list', query, input.cursor, isListKey);
    return { runs: [], next_cursor: null };
  }
  // A tree is one agent's: another agent's tree lists as empty, as a tree that does not exist.
  if (rootRunId !== null) {
    const root = await deps.store.get('runs', rootRunId);
    if (root !== null && root.agent_id !== agentId) {
      decodeCursor('runs/list', query, input.cursor, isListKey);
      return { runs: [], next_cursor: null };
    }
  }
  const where: readonly [IndexedField<'runs'>, string] =
    rootRunId !== null
      ? ['root_run_id', rootRunId]
      : status === 'active'
        ? ['live_agent_id', agentId]
        : ['agent_id', agentId];
  const reader = memoReader(deps.store);
  const nowMs = deps.clock.now();
  const { items, next_cursor } = await list(
    'runs/list',
    query,
    input,
    [querySource(deps.store, 'runs', 'list_key', where)],
    async ({ doc }) => {
      if (doc.agent_id !== agentId) return null;
      const now = await runStatus(reader, doc, nowMs);
      const wanted = status === 'all' || (status === 'active') === (now === 'active');
      return wanted ? runItem(doc, now) : null;
    },
  );
  return { runs: items, next_cursor };
}

function runItem(doc: RunDoc, status: RunStatus): RunItem {
  return {
    run_id: doc.run_id,
    agent_id: doc.agent_id,
    parent_run_id: doc.parent_run_id,
    root_run_id: doc.root_run_id,
    task: doc.task,
    scope: [...doc.scope],
    status,
    created_at: doc.created_at,
    expires_at: doc.expires_at,
  };
}
