/**
 * `/agents/retire`: the end of an agent. Every device key, unused enrollment, delegation (from
 * and to it) and run is revoked, every secret version is destroyed (the ciphertext and its
 * wrapped data key deleted: crypto-shredding), and the agent record stays, disabled and
 * stamped `retired_at`, so its id is never minted again and its audit keeps its subject.
 *
 * Fail closed first, then clean up. The first transaction marks the agent retired and
 * disabled; from that commit on, every credential check refuses it (auth/enabled-agent.ts reads
 * the record on every request), and `/agents/enable` refuses a retired agent (core/agents.ts),
 * so nothing acts for it whatever the walks below have reached. The walks (retire-walks.ts)
 * then page through what the agent holds, each page read and changed in its own transaction of
 * at most 200 writes (items, their audit event and the agent's progress counter; the run walk,
 * run-tree.ts's own, makes 202: 200 runs, its event, the counter), so an agent of any size
 * retires, far inside a Firestore transaction's limit of 500.
 *
 * Resumable and idempotent: an interrupted retire leaves the agent refused everywhere; calling
 * it again walks everything again, changes only what is left and answers the same `retired_at`.
 * The counts in the answer are cumulative over every call of the retire: each batch adds what
 * it changed to the agent's `retirement` progress in the same transaction as the change, so a
 * count is exact however often the retire was interrupted or run concurrently.
 */
import { rfc3339 } from '../ports/clock.js';
import { actorOf } from './audit.js';
import { isRetired, requireAgent } from './agents.js';
import type { CoreDeps } from './deps.js';
import type { Principal } from './principal.js';
import {
  countingRunEnds,
  delegationsWalk,
  deviceKeysWalk,
  enrollmentsWalk,
  progressOf,
  RETIRE_CAUSE,
  secretsWalk,
  walk,
  type RetireProgress,
  type RetiringAgentDoc,
} from './retire-walks.js';
import { revokeRunsOf } from './runs.js';

/** What `/agents/retire` answers: the counts are cumulative over every call of the retire. */
export interface RetireResult {
  agent_id: string;
  retired_at: string;
  revoked: { device_keys: number; delegations: number; runs: number };
  destroyed_versions: number;
}

/**
 * The first transaction: the agent is marked retired and disabled, audited once
 * (`agent.retire`). Already retired: unchanged, and its first `retired_at` stands.
 */
async function markRetired(deps: CoreDeps, principal: Principal, agentId: string): Promise<string> {
  return deps.store.transact(async (tx) => {
    const agent = await requireAgent(tx, agentId);
    if (isRetired(agent)) return agent.retired_at;
    const at = rfc3339(deps.clock.now());
    const doc: RetiringAgentDoc = {
      ...agent,
      disabled: true,
      retired_at: at,
      updated_at: at,
      retirement: progressOf(agent),
    };
    tx.set('agents', agentId, doc);
    tx.audit({
      category: 'auth',
      action: 'agent.retire',
      actor: actorOf(principal),
      target: { agent_id: agentId },
      at,
      details: { was_disabled: agent.disabled },
    });
    return at;
  });
}

/** The last transaction: the first call to get here records the retire complete, audited. */
async function markComplete(
  deps: CoreDeps,
  principal: Principal,
  agentId: string,
): Promise<RetireProgress> {
  return deps.store.transact(async (tx) => {
    const agent = await requireAgent(tx, agentId);
    const progress = progressOf(agent);
    if (progress.completed_at !== null) return progress;
    const at = rfc3339(deps.clock.now());
    const done: RetireProgress = { ...progress, completed_at: at };
    const doc: RetiringAgentDoc = { ...agent, retirement: done };
    tx.set('agents', agentId, doc);
    const { completed_at: _, ...counts } = done;
    tx.audit({
      category: 'auth',
      action: 'agent.retire_complete',
      actor: actorOf(principal),
      target: { agent_id: agentId },
      at,
      details: counts,
    });
    return done;
  });
}

/**
 * Retires an agent (see the module comment): 404 for an unknown agent; a retired agent is
 * retired again without error, finishing whatever an earlier call left.
 */
export async function retireAgent(
  deps: CoreDeps,
  principal: Principal,
  agentId: string,
): Promise<RetireResult> {
  const retiredAt = await markRetired(deps, principal, agentId);
  await walk(deps, agentId, deviceKeysWalk(principal, agentId));
  await walk(deps, agentId, enrollmentsWalk(principal, agentId));
  await walk(deps, agentId, delegationsWalk(principal, agentId, 'from_agent'));
  await walk(deps, agentId, delegationsWalk(principal, agentId, 'to_agent'));
  await revokeRunsOf({ ...deps, store: countingRunEnds(deps.store, agentId) }, principal, {
    agent_id: agentId,
    action: RETIRE_CAUSE,
  });
  // Last, so that a write authenticated just before the first transaction (and committing
  // after it) has most likely landed already; a later call of the retire shreds it if not.
  await walk(deps, agentId, secretsWalk(principal, agentId));
  const progress = await markComplete(deps, principal, agentId);
  return {
    agent_id: agentId,
    retired_at: retiredAt,
    revoked: {
      device_keys: progress.device_keys,
      delegations: progress.delegations,
      runs: progress.runs,
    },
    destroyed_versions: progress.destroyed_versions,
  };
}
