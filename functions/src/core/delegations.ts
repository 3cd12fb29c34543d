/**
 * Delegations: a grant from one agent to another to call a bounded set of agent RPCs on its
 * behalf, for a bounded time. No transitive authority: a delegated request can never create a
 * delegation, and `delegate` itself can never be delegated.
 */
import { rfc3339 } from '../ports/clock.js';
import type { DelegationDoc, StoreReader } from '../ports/store.js';
import { requireAgent } from './agents.js';
import type { CoreDeps } from './deps.js';
import { actorOf } from './audit.js';
import { ApiError } from './errors.js';
import { liveCallingKey } from './device-keys.js';
import { checkLiveCap } from './live-caps.js';
import { generateDelegationId, listKey } from './ids.js';
import {
  clampToMaker,
  credentialScope,
  type ActiveDelegation,
  type AgentPrincipal,
  type DelegatePrincipal,
  type Principal,
} from './principal.js';
import {
  DELEGABLE_RPCS,
  DELEGATION_ID_PATTERN,
  RESOURCE_RPCS,
  parseScopeEntry,
  scopeAllows,
} from '@agentpack-identity/protocol';
import { readSetting } from './settings.js';

export interface Delegation {
  delegation_id: string;
  from_agent: string;
  to_agent: string;
  scope: string[];
  created_at: string;
  expires_at: string;
}

/** The API view of a delegation record. */
export function delegationView(doc: DelegationDoc): Delegation {
  return {
    delegation_id: doc.delegation_id,
    from_agent: doc.from_agent,
    to_agent: doc.to_agent,
    scope: [...doc.scope],
    created_at: doc.created_at,
    expires_at: doc.expires_at,
  };
}

/**
 * Checks a requested delegation scope: non-empty, each entry in the grammar, each RPC
 * delegable (never `delegate`, never a bridge-only RPC), a resource only on RPCs that take one,
 * and nothing wider than the caller's own capability token scope when it calls with a token.
 */
function checkScope(scope: readonly string[], principal: AgentPrincipal): string[] {
  const own = credentialScope(principal);
  const seen = new Set<string>();
  scope.forEach((text, index) => {
    const entry = parseScopeEntry(text);
    const refuse = (reason: string) => {
      throw new ApiError('invalid_argument', `scope[${index}]: ${reason}`, {
        field: 'scope',
        index,
      });
    };
    if (entry === null) refuse('not of the form rpc or rpc:resource');
    else if (!(DELEGABLE_RPCS as readonly string[]).includes(entry.rpc)) {
      refuse(`${entry.rpc} cannot be delegated`);
    } else if (
      entry.resource !== null &&
      !(RESOURCE_RPCS as readonly string[]).includes(entry.rpc)
    ) {
      refuse(`${entry.rpc} does not take a resource`);
    } else if (own !== null && !scopeAllows(own, entry.rpc, entry.resource)) {
      throw new ApiError(
        'permission_denied',
        `scope[${index}] is wider than the token's own scope`,
        {
          index,
        },
      );
    }
    seen.add(text);
  });
  return [...seen];
}

/** Creates a delegation from the caller's agent to `to_agent`. */
export async function createDelegation(
  deps: CoreDeps,
  principal: AgentPrincipal,
  input: { to_agent: string; scope: string[]; ttl_seconds: number },
): Promise<Delegation> {
  if (principal.delegation !== undefined) {
    // No transitive authority; the route policy refuses this too, this is defense in depth.
    throw new ApiError('permission_denied', 'a delegated request cannot create a delegation');
  }
  const fromAgent = principal.agent_id;
  if (input.to_agent === fromAgent) {
    throw new ApiError('invalid_argument', 'to_agent must differ from the delegating agent', {
      field: 'to_agent',
    });
  }
  const scope = checkScope(input.scope, principal);
  return deps.store.transact(async (tx) => {
    const maxTtl = await readSetting(tx, 'delegation.max_ttl_seconds');
    const from = await requireAgent(tx, fromAgent);
    const to = await tx.get('agents', input.to_agent);
    if (input.ttl_seconds > maxTtl) {
      throw new ApiError('invalid_argument', 'ttl_seconds is above the maximum', {
        field: 'ttl_seconds',
        max_ttl_seconds: maxTtl,
      });
    }
    if (from.disabled) throw new ApiError('permission_denied', 'the agent is disabled');
    if (to === null) throw new ApiError('not_found', 'no such agent', { agent_id: input.to_agent });
    if (to.disabled) {
      throw new ApiError('failed_precondition', 'to_agent is disabled', {
        agent_id: input.to_agent,
      });
    }
    const nowMs = deps.clock.now();
    await liveCallingKey(tx, principal, nowMs);
    await checkLiveCap(tx, 'delegations', fromAgent, nowMs);
    const delegationId = generateDelegationId();
    const createdAt = rfc3339(nowMs);
    const doc: DelegationDoc = {
      delegation_id: delegationId,
      from_agent: fromAgent,
      to_agent: to.agent_id,
      scope,
      created_at: createdAt,
      list_key: listKey(createdAt, delegationId),
      // Never past the credential that made it (a token's exp, a device key's end).
      expires_at: rfc3339(clampToMaker(principal, nowMs + input.ttl_seconds * 1000)!),
      revoked_at: null,
      live_from_agent: fromAgent,
    };
    tx.set('delegations', doc.delegation_id, doc);
    tx.audit({
      category: 'auth',
      action: 'delegation.create',
      actor: actorOf(principal),
      target: { agent_id: to.agent_id, delegation_id: doc.delegation_id },
      at: doc.created_at,
      details: { scope: scope.join(' '), expires_at: doc.expires_at },
    });
    return delegationView(doc);
  });
}

/**
 * Revokes a delegation. The bridge, the delegating agent or the delegate may; to anyone else
 * it does not exist (404). Revoking twice answers the first `revoked_at`.
 */
export async function revokeDelegation(
  deps: CoreDeps,
  principal: Principal,
  delegationId: string,
): Promise<{ delegation_id: string; revoked_at: string }> {
  return deps.store.transact(async (tx) => {
    const doc = await tx.get('delegations', delegationId);
    const party =
      principal.kind === 'bridge' ||
      (doc !== null &&
        (doc.from_agent === principal.agent_id || doc.to_agent === principal.agent_id));
    if (doc === null || !party) {
      throw new ApiError('not_found', 'no such delegation', { delegation_id: delegationId });
    }
    if (doc.revoked_at !== null)
      return { delegation_id: doc.delegation_id, revoked_at: doc.revoked_at };
    const at = rfc3339(deps.clock.now());
    tx.set('delegations', delegationId, { ...doc, revoked_at: at, live_from_agent: null });
    tx.audit({
      category: 'auth',
      action: 'delegation.revoke',
      actor: actorOf(principal),
      target: { agent_id: doc.to_agent, delegation_id: doc.delegation_id },
      at,
      details: { from_agent: doc.from_agent },
    });
    return { delegation_id: doc.delegation_id, revoked_at: at };
  });
}

/** Why a presented delegation was refused, for the structured log. */
export type DelegationRefusal =
  | 'malformed'
  | 'unknown'
  | 'not_addressed_to_caller'
  | 'revoked'
  | 'expired'
  | 'delegator_disabled'
  | 'delegator_missing';

/**
 * Checks a delegation presented by `delegate` (whose own agent is already known to be
 * enabled): it must exist, name the caller as `to_agent`, be unrevoked and unexpired, and its
 * delegator must exist and be enabled. Read from the store on every request: revocation holds
 * from the next request on.
 */
export async function activateDelegation(
  reader: StoreReader,
  nowMs: number,
  delegate: DelegatePrincipal,
  delegationId: string,
): Promise<{ ok: true; delegation: ActiveDelegation } | { ok: false; reason: DelegationRefusal }> {
  if (!DELEGATION_ID_PATTERN.test(delegationId)) return { ok: false, reason: 'malformed' };
  const doc = await reader.get('delegations', delegationId);
  if (doc === null) return { ok: false, reason: 'unknown' };
  if (doc.to_agent !== delegate.agent_id) return { ok: false, reason: 'not_addressed_to_caller' };
  if (doc.revoked_at !== null) return { ok: false, reason: 'revoked' };
  if (Date.parse(doc.expires_at) <= nowMs) return { ok: false, reason: 'expired' };
  const from = await reader.get('agents', doc.from_agent);
  if (from === null) return { ok: false, reason: 'delegator_missing' };
  if (from.disabled) return { ok: false, reason: 'delegator_disabled' };
  return {
    ok: true,
    delegation: {
      delegation_id: doc.delegation_id,
      from_agent: doc.from_agent,
      scope: doc.scope,
      expires_at: doc.expires_at,
    },
  };
}
