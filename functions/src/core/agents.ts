/**
 * Agents: mint, read, disable, enable (retire is core/retire.ts). Pure rules over the store
 * port; every change commits with its audit event.
 */
import { ApiError } from './errors.js';
import { rfc3339 } from '../ports/clock.js';
import type { AgentDoc, StoreReader } from '../ports/store.js';
import { actorOf } from './audit.js';
import type { CoreDeps } from './deps.js';
import { generateAgentId } from './ids.js';
import type { Principal } from './principal.js';
import { revokeRunsOf } from './runs.js';

/**
 * An agent as the API shows it. `retired_at` is present only on a retired agent (which is
 * always `disabled` too): a live agent reads exactly as before retire existed.
 */
export interface Agent {
  agent_id: string;
  display_name: string;
  disabled: boolean;
  created_at: string;
  retired_at?: string;
}

/** The API view of an agent record. */
export function agentView(doc: AgentDoc): Agent {
  const view: Agent = {
    agent_id: doc.agent_id,
    display_name: doc.display_name,
    disabled: doc.disabled,
    created_at: doc.created_at,
  };
  if (typeof doc.retired_at === 'string') view.retired_at = doc.retired_at;
  return view;
}

/** True once `/agents/retire` has started on the agent: it is gone for good. */
export function isRetired(doc: AgentDoc): doc is AgentDoc & { retired_at: string } {
  return typeof doc.retired_at === 'string';
}

/** Mints an agent. 409 `already_exists` when the id is taken. */
export async function createAgent(
  deps: CoreDeps,
  principal: Principal,
  input: { display_name: string; agent_id?: string | undefined },
): Promise<Agent> {
  return deps.store.transact(async (tx) => {
    const agentId = input.agent_id ?? generateAgentId();
    if ((await tx.get('agents', agentId)) !== null) {
      throw new ApiError('already_exists', 'an agent with this id already exists', {
        agent_id: agentId,
      });
    }
    const at = rfc3339(deps.clock.now());
    const doc: AgentDoc = {
      agent_id: agentId,
      display_name: input.display_name,
      disabled: false,
      created_at: at,
      updated_at: at,
    };
    tx.set('agents', agentId, doc);
    tx.audit({
      category: 'auth',
      action: 'agent.create',
      actor: actorOf(principal),
      target: { agent_id: agentId },
      at,
    });
    return agentView(doc);
  });
}

/** Reads an agent record or throws 404 `not_found`. */
export async function requireAgent(reader: StoreReader, agentId: string): Promise<AgentDoc> {
  const doc = await reader.get('agents', agentId);
  if (doc === null) throw new ApiError('not_found', 'no such agent', { agent_id: agentId });
  return doc;
}

/** Reads an agent. */
export async function getAgent(deps: CoreDeps, agentId: string): Promise<Agent> {
  return agentView(await requireAgent(deps.store, agentId));
}

/**
 * Disables or enables an agent. From the next request on, nothing acts for a disabled agent.
 * Disabling also ends (revoked) every live run of the agent, by the paged walk; disabling a
 * disabled agent resumes that walk if it was interrupted. Otherwise setting the state the agent
 * already has changes nothing and writes no audit event. A retired agent is never enabled again
 * (409 `failed_precondition`): retire is the end, and `disabled` is what every credential
 * check refuses it by (auth/enabled-agent.ts), so the refusal lives at that one switch.
 */
function retiredRefusal(agentId: string): ApiError {
  return new ApiError('failed_precondition', 'a retired agent cannot be enabled', {
    agent_id: agentId,
    reason: 'retired',
  });
}

export async function setAgentDisabled(
  deps: CoreDeps,
  principal: Principal,
  agentId: string,
  disabled: boolean,
): Promise<Agent> {
  // Before an agent comes back, the run walk of its disable must be complete: a walk cut short
  // left runs that only the disabled flag refused, and enabling would bring them back to life.
  // Nothing is live while the agent is disabled, so this finds only what that walk missed.
  if (!disabled) {
    const before = await requireAgent(deps.store, agentId);
    if (isRetired(before)) throw retiredRefusal(agentId);
    if (before.disabled) {
      await revokeRunsOf(deps, principal, { agent_id: agentId, action: 'agent.disable' });
    }
  }
  const agent = await deps.store.transact(async (tx) => {
    const current = await requireAgent(tx, agentId);
    if (!disabled && isRetired(current)) throw retiredRefusal(agentId);
    if (current.disabled === disabled) return agentView(current);
    const at = rfc3339(deps.clock.now());
    const doc: AgentDoc = { ...current, disabled, updated_at: at };
    tx.set('agents', agentId, doc);
    tx.audit({
      category: 'auth',
      action: disabled ? 'agent.disable' : 'agent.enable',
      actor: actorOf(principal),
      target: { agent_id: agentId },
      at,
    });
    return agentView(doc);
  });
  if (disabled) await revokeRunsOf(deps, principal, { agent_id: agentId, action: 'agent.disable' });
  return agent;
}
