/**
 * Ephemeral runs: a per-spawn identity for one task (made by `spawn.ts`). The instance generates its own Ed25519
 * key and sends only the public half; the run gets a scope no wider than its spawner's rights,
 * a life bounded by `runs.max_ttl_seconds`, by its parent's and by its spawner's credential
 * (one clamp, `clampToMaker`), a depth bounded by `runs.max_depth`, its lineage (root …
 * parent, itself), and the spawning device key of its tree.
 *
 * Ending runs — both, on purpose: `/runs/complete`, `/runs/revoke`, `/agents/disable` and a
 * device key's revoke end the runs through the one paged walk of `run-tree.ts` (complete,
 * whatever the size of the tree), AND every use of a run checks each run in its lineage and its
 * tree's spawning key ({@link runStatus}). The walk makes the well-known documents and the
 * answers exact; the check is what guarantees that nothing survives an interrupted walk or a
 * child spawned concurrently with it.
 */
import {
  AGENT_LIST_RPCS,
  DELEGABLE_RPCS,
  RUN_ID_PATTERN,
  type RunStatus,
  type RunView,
} from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { RunDoc, RunEnd, StoreReader } from '../ports/store.js';
import type { CoreDeps } from './deps.js';
import { actorOf } from './audit.js';
import { ApiError } from './errors.js';
import type { AgentPrincipal, Principal } from './principal.js';
import { endedRun, endRuns, type BatchAudit } from './run-tree.js';

/** Hard ceilings: the settings can only be set below these. */
export const RUN_TTL_CEILING_SECONDS = 24 * 3600;
export const RUN_DEPTH_CEILING = 16;

/**
 * The RPCs a run's scope may hold: every delegable agent RPC, spawning children, and the
 * agent's own lists.
 */
export const RUN_RPCS: readonly string[] = [...DELEGABLE_RPCS, 'runs/spawn', ...AGENT_LIST_RPCS];

export type { RunStatus, RunView } from '@agentpack-identity/protocol';

/** A run as the API shows it. */
export function runView(doc: RunDoc): RunView {
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
 * The status of a run, its ancestors, its tree's spawning key and its agent included: revoked if
 * it or any ancestor was revoked, the device key that spawned the tree is revoked or gone, the
 * role whose exchange made the tree was deleted or changed since, or
 * its agent is disabled, retired or gone (disabling ends an agent's runs for good; this answers
 * so before the walk has reached them); completed if it or an ancestor completed; expired when
 * its time is up.
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
  const keyId = doc.spawned_by_key_id ?? null;
  if (ended !== 'revoked' && keyId !== null) {
    const [key] = await reader.find('device_keys', 'key_id', keyId, 1);
    if (key === undefined || key.doc.revoked_at !== null) ended = 'revoked';
  }
  const role = doc.spawned_by_role ?? null;
  if (ended !== 'revoked' && role !== null) {
    const current = await reader.get('roles', role.role);
    if (current === null || current.updated_at !== role.updated_at) ended = 'revoked';
  }
  if (ended !== 'revoked') {
    const agent = await reader.get('agents', doc.agent_id);
    if (agent === null || agent.disabled) ended = 'revoked';
  }
  if (ended !== null) return ended;
  return Date.parse(doc.expires_at) <= nowMs ? 'expired' : 'active';
}

/**
 * Ends a run and its whole subtree: the run itself first, in its own transaction (from then on
 * every descendant is refused by the lineage check), then every descendant by the paged walk.
 * Answers the runs whose state changed; runs already ended keep their first ending.
 */
async function endSubtree(
  deps: CoreDeps,
  principal: Principal,
  runId: string,
  how: RunEnd,
): Promise<string[]> {
  const audit = (run: RunDoc): BatchAudit => ({
    category: 'auth',
    action: how === 'completed' ? 'run.complete' : 'run.revoke',
    actor: { ...actorOf(principal), root_run_id: run.root_run_id },
    target: { agent_id: run.agent_id, run_id: runId },
  });
  const run = await deps.store.transact(async (tx) => {
    const doc = await tx.get('runs', runId);
    if (doc === null) throw new ApiError('not_found', 'no such run', { run_id: runId });
    if (doc.ended === null) {
      const at = rfc3339(deps.clock.now());
      tx.set('runs', runId, endedRun(doc, how, at));
      tx.audit({ ...audit(doc), at, details: { ended: 1, run_ids: runId } });
    }
    return doc;
  });
  const descendants = await endRuns(
    deps,
    { where: ['root_run_id', run.root_run_id], include: (d) => d.lineage.includes(runId) },
    how,
    audit(run),
  );
  return run.ended === null ? [runId, ...descendants] : descendants;
}

/**
 * Ends (revoked) every run of a selection because its authority went away: the runs spawned
 * with a revoked device key, or every run of a disabled agent.
 */
export async function revokeRunsOf(
  deps: CoreDeps,
  principal: Principal,
  cause: { agent_id: string; key_id?: string; action: string },
): Promise<string[]> {
  return endRuns(
    deps,
    {
      // By `agent_id`, which every run has (runs from before `live_agent_id` included); the
      // walk skips the ended ones.
      where:
        cause.key_id === undefined
          ? ['agent_id', cause.agent_id]
          : ['spawned_by_key_id', cause.key_id],
    },
    'revoked',
    {
      category: 'auth',
      action: 'run.revoke',
      actor: actorOf(principal),
      target: {
        agent_id: cause.agent_id,
        ...(cause.key_id === undefined ? {} : { key_id: cause.key_id }),
      },
      details: { cause: cause.action },
    },
  );
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
