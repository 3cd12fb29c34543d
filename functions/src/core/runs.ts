/**
 * Ephemeral runs: a per-spawn identity for one task. The instance generates its own Ed25519
 * key and sends only the public half; the run gets a scope no wider than its spawner's rights,
 * a life bounded by `runs.max_ttl_seconds` and by its parent's, a depth bounded by
 * `runs.max_depth`, and its lineage (root … parent, itself).
 *
 * Ending a subtree — both, on purpose: `/runs/complete` and `/runs/revoke` mark the run and
 * every descendant ended in one transaction (one query by `root_run_id`, then a batch of
 * writes), AND every use of a run checks the state of each run in its lineage (at most
 * `runs.max_depth` reads). The batch makes the well-known documents and the answer's list
 * exact; the lineage check is what guarantees that no descendant survives — including one
 * spawned concurrently with the revoke, or one beyond a Firestore transaction's write limit.
 */
import {
  decodeRawKey,
  DELEGABLE_RPCS,
  parseScopeEntry,
  RESOURCE_RPCS,
  RUN_ID_PATTERN,
  scopeAllows,
  type RunStatus,
  type RunView,
  signingKeyProblem,
} from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { RunDoc, RunEnd, StoreReader } from '../ports/store.js';
import { requireAgent } from './agents.js';
import type { CoreDeps } from './deps.js';
import { actorOf } from './audit.js';
import { ApiError } from './errors.js';
import { generateRunId } from './ids.js';
import { credentialScope, type AgentPrincipal, type Principal } from './principal.js';
import { readSetting } from './settings.js';

/** Run ids: `run_` + 128 random bits. */
/** Hard ceilings: the settings can only be set below these. */
export const RUN_TTL_CEILING_SECONDS = 24 * 3600;
export const RUN_DEPTH_CEILING = 16;
/** The most descendants one complete or revoke ends by batch (the lineage check covers more). */
const SUBTREE_BATCH_LIMIT = 400;

/** The RPCs a run's scope may hold: every delegable agent RPC, and spawning children. */
export const RUN_RPCS: readonly string[] = [...DELEGABLE_RPCS, 'runs/spawn'];

export type { RunStatus, RunView } from '@agentpack-identity/protocol';

function view(doc: RunDoc): RunView {
  return {
    run_id: doc.run_id,
    agent_id: doc.agent_id,
    parent_run_id: doc.parent_run_id,
    root_run_id: doc.root_run_id,
    lineage: [...doc.lineage],
    scope: [...doc.scope],
    created_at: doc.created_at,
    expires_at: doc.expires_at,
  };
}

/**
 * The status of a run, its ancestors included: revoked if it or any ancestor was revoked,
 * completed if it or an ancestor completed, expired when its time is up.
 */
export async function runStatus(
  reader: StoreReader,
  doc: RunDoc,
  nowMs: number,
): Promise<RunStatus> {
  let ended: RunEnd | null = doc.ended;
  for (const id of doc.lineage.slice(0, -1)) {
    if (ended === 'revoked') break;
    const ancestor = await reader.get('runs', id);
    if (ancestor === null || ancestor.ended === 'revoked') ended = 'revoked';
    else if (ancestor.ended === 'completed') ended ??= 'completed';
  }
  if (ended !== null) return ended;
  return Date.parse(doc.expires_at) <= nowMs ? 'expired' : 'active';
}

/** Checks a requested run scope against the grammar and the spawner's own rights. */
function checkRunScope(scope: readonly string[], spawner: AgentPrincipal): string[] {
  const own = credentialScope(spawner);
  const out = new Set<string>();
  scope.forEach((text, index) => {
    const entry = parseScopeEntry(text);
    const bad = (reason: string): never => {
      throw new ApiError('invalid_argument', `scope[${index}]: ${reason}`, {
        field: 'scope',
        index,
      });
    };
    if (entry === null) bad('not of the form rpc or rpc:resource');
    else if (!RUN_RPCS.includes(entry.rpc)) bad(`${entry.rpc} cannot be granted to a run`);
    else if (entry.resource !== null && !(RESOURCE_RPCS as readonly string[]).includes(entry.rpc)) {
      bad(`${entry.rpc} does not take a resource`);
    } else if (own !== null && !scopeAllows(own, entry.rpc, entry.resource)) {
      throw new ApiError(
        'permission_denied',
        `scope[${index}] is wider than the spawner's rights`,
        {
          index,
        },
      );
    }
    out.add(text);
  });
  return [...out];
}

/** Spawns a run for the caller's agent (a child when the caller is a run). */
export async function spawnRun(
  deps: CoreDeps,
  spawner: AgentPrincipal,
  input: { task: string; scope: string[]; ttl_seconds: number; public_key: string },
): Promise<RunView> {
  const raw = decodeRawKey(input.public_key);
  const problem = raw === null ? 'must be 32 bytes as unpadded base64url' : signingKeyProblem(raw);
  if (problem !== null) {
    throw new ApiError('invalid_argument', `public_key: ${problem}`, { field: 'public_key' });
  }
  const scope = checkRunScope(input.scope, spawner);
  return deps.store.transact(async (tx) => {
    const maxTtl = await readSetting(tx, 'runs.max_ttl_seconds');
    const maxDepth = await readSetting(tx, 'runs.max_depth');
    const agent = await requireAgent(tx, spawner.agent_id);
    const parent = spawner.kind === 'run' ? await tx.get('runs', spawner.run_id) : null;
    const [sameKey] = await tx.find('runs', 'public_key', input.public_key, 1);
    if (input.ttl_seconds > maxTtl) {
      throw new ApiError('invalid_argument', 'ttl_seconds is above the maximum', {
        field: 'ttl_seconds',
        max_ttl_seconds: maxTtl,
      });
    }
    if (agent.disabled) throw new ApiError('permission_denied', 'the agent is disabled');
    if (sameKey !== undefined) {
      throw new ApiError(
        'already_exists',
        'this public key belongs to another run: generate a fresh key per run',
      );
    }
    if (spawner.kind === 'run' && parent === null)
      throw new ApiError('unauthenticated', 'the parent run is gone');
    const lineage = parent === null ? [] : [...parent.lineage];
    if (lineage.length + 1 > maxDepth) {
      throw new ApiError('failed_precondition', 'the run tree is at its maximum depth', {
        max_depth: maxDepth,
      });
    }
    const nowMs = deps.clock.now();
    const runId = generateRunId();
    const ownEnd = nowMs + input.ttl_seconds * 1000;
    // A child never outlives its parent.
    const expiresMs = parent === null ? ownEnd : Math.min(ownEnd, Date.parse(parent.expires_at));
    const doc: RunDoc = {
      run_id: runId,
      agent_id: agent.agent_id,
      parent_run_id: parent?.run_id ?? null,
      root_run_id: parent?.root_run_id ?? runId,
      lineage: [...lineage, runId],
      task: input.task,
      scope,
      public_key: input.public_key,
      created_at: rfc3339(nowMs),
      expires_at: rfc3339(expiresMs),
      ended: null,
      ended_at: null,
    };
    tx.set('runs', runId, doc);
    tx.audit({
      category: 'auth',
      action: 'run.spawn',
      // The new run is part of the tree: its event carries the tree's root.
      actor: { ...actorOf(spawner), root_run_id: doc.root_run_id },
      target: { agent_id: agent.agent_id, run_id: runId },
      at: doc.created_at,
      details: {
        task: input.task,
        scope: scope.join(' '),
        parent_run_id: doc.parent_run_id,
        expires_at: doc.expires_at,
      },
    });
    return view(doc);
  });
}

/**
 * Ends a run and its whole subtree (see the file comment for how the subtree is covered).
 * Runs already ended keep their first ending.
 */
async function endSubtree(
  deps: CoreDeps,
  principal: Principal,
  runId: string,
  how: RunEnd,
): Promise<string[]> {
  return deps.store.transact(async (tx) => {
    const run = await tx.get('runs', runId);
    if (run === null) throw new ApiError('not_found', 'no such run', { run_id: runId });
    const tree = await tx.find('runs', 'root_run_id', run.root_run_id, SUBTREE_BATCH_LIMIT + 1);
    const subtree = tree.filter(({ doc }) => doc.lineage.includes(runId));
    const at = rfc3339(deps.clock.now());
    const ended: string[] = [];
    for (const { id, doc } of subtree) {
      ended.push(doc.run_id);
      if (doc.ended !== null) continue;
      tx.set('runs', id, { ...doc, ended: how, ended_at: at });
    }
    tx.audit({
      category: 'auth',
      action: how === 'completed' ? 'run.complete' : 'run.revoke',
      actor: { ...actorOf(principal), root_run_id: run.root_run_id },
      target: { agent_id: run.agent_id, run_id: runId },
      at,
      details: { ended: ended.length },
    });
    // Root first, then by depth: the order the tree grew in.
    const depth = new Map(subtree.map(({ doc }) => [doc.run_id, doc.lineage.length]));
    return ended.sort((a, b) => depth.get(a)! - depth.get(b)!);
  });
}

/** `/runs/complete`: the run itself ends, with its subtree. */
export async function completeRun(
  deps: CoreDeps,
  run: AgentPrincipal,
): Promise<{ run_id: string; status: 'completed'; ended: string[] }> {
  if (run.kind !== 'run') throw new Error('completeRun needs a run principal');
  const ended = await endSubtree(deps, run, run.run_id, 'completed');
  return { run_id: run.run_id, status: 'completed', ended };
}

/**
 * `/runs/revoke`: by the run's agent (device key), an ancestor run, or the bridge. To anyone
 * else the run does not exist (404).
 */
export async function revokeRun(
  deps: CoreDeps,
  principal: Principal,
  runId: string,
): Promise<{ run_id: string; revoked: string[] }> {
  const run = await deps.store.get('runs', runId);
  const allowed =
    run !== null &&
    (principal.kind === 'bridge' ||
      (principal.kind === 'device' &&
        principal.delegation === undefined &&
        principal.agent_id === run.agent_id) ||
      (principal.kind === 'run' && run.lineage.slice(0, -1).includes(principal.run_id)));
  if (!allowed) throw new ApiError('not_found', 'no such run', { run_id: runId });
  const revoked = await endSubtree(deps, principal, runId, 'revoked');
  return { run_id: runId, revoked };
}

/** The public verification document of a run. */
export async function runIdentity(
  deps: CoreDeps,
  runId: string,
): Promise<{
  run_id: string;
  agent_id: string;
  status: RunStatus;
  public_key: { kty: 'OKP'; crv: 'Ed25519'; x: string };
  root_run_id: string;
  expires_at: string;
}> {
  const doc = RUN_ID_PATTERN.test(runId) ? await deps.store.get('runs', runId) : null;
  if (doc === null) throw new ApiError('not_found', 'no such run', { run_id: runId.slice(0, 64) });
  return {
    run_id: doc.run_id,
    agent_id: doc.agent_id,
    status: await runStatus(deps.store, doc, deps.clock.now()),
    public_key: { kty: 'OKP', crv: 'Ed25519', x: doc.public_key },
    root_run_id: doc.root_run_id,
    expires_at: doc.expires_at,
  };
}
