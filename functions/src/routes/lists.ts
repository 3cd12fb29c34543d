/**
 * The operator plane's lists and the audit query. Who may list what:
 *
 * - `/agents/list` and `/audit/query`: the bridge key only (operators see the whole fleet).
 * - `/device/list`: the bridge naming an agent, or a device key listing its own agent's keys
 *   (as the contract says: not a token or a run, which hold less than the agent's rights).
 * - `/delegations/list` and `/runs/list`: the bridge naming an agent, or an agent listing its
 *   own: a device key, or a token or run whose scope grants the RPC (`delegations/list`,
 *   `runs/list`; see AGENT_LIST_RPCS in the protocol's scope.ts).
 *
 * Never through a delegation: a delegate acts for the delegator on what the delegation's scope
 * names (its secrets), and these RPCs are not delegable; an inventory of the delegator's keys,
 * grants and runs is the delegator's own business. An agent-bound caller's `agent_id` is
 * ignored (the HTTP core drops it: `agentScoped`), so naming another agent lists one's own.
 */
import {
  agentsListRequest,
  agentsListResponse,
  auditQueryRequest,
  auditQueryResponse,
  delegationsListRequest,
  delegationsListResponse,
  deviceListRequest,
  deviceListResponse,
  runsListRequest,
  runsListResponse,
} from '@agentpack-identity/protocol';
import { queryAudit } from '../core/audit-query.js';
import {
  listAgents,
  listDelegations,
  listDeviceKeys,
  listedAgent,
  listRuns,
} from '../core/lists.js';
import type { Principal } from '../core/principal.js';
import type { AppDeps } from './route.js';
import { actingAgent, defineRoute, requirePrincipal } from './route.js';

/** The agent a per-agent list is about: the caller's own, or the one the bridge names. */
function agentOf(deps: AppDeps, principal: Principal | null, requested: string | undefined) {
  const caller = requirePrincipal(principal);
  return listedAgent(deps, actingAgent(caller, requested), caller.kind === 'bridge');
}

/** POST /agents/list (bridge): every agent, by `agent_id`. */
export const agentsList = defineRoute({
  method: 'POST',
  path: '/agents/list',
  rpc: 'agents/list',
  policy: ['bridge'],
  agentScoped: false,
  status: 200,
  input: agentsListRequest,
  output: agentsListResponse,
  handle: ({ deps, input }) => listAgents(deps, input),
});

/** POST /device/list: an agent's device keys, by creation time. */
export const deviceList = defineRoute({
  method: 'POST',
  path: '/device/list',
  rpc: 'device/list',
  policy: ['bridge', 'device'],
  agentScoped: true,
  status: 200,
  input: deviceListRequest,
  output: deviceListResponse,
  handle: async ({ deps, principal, input }) =>
    listDeviceKeys(deps, await agentOf(deps, principal, input.agent_id), input),
});

/** POST /delegations/list: the delegations an agent gave, received, or both. */
export const delegationsList = defineRoute({
  method: 'POST',
  path: '/delegations/list',
  rpc: 'delegations/list',
  policy: ['bridge', 'device', 'token', 'run'],
  agentScoped: true,
  status: 200,
  input: delegationsListRequest,
  output: delegationsListResponse,
  handle: async ({ deps, principal, input }) =>
    listDelegations(deps, await agentOf(deps, principal, input.agent_id), input),
});

/** POST /runs/list: an agent's runs, by creation time, with their status. */
export const runsList = defineRoute({
  method: 'POST',
  path: '/runs/list',
  rpc: 'runs/list',
  policy: ['bridge', 'device', 'token', 'run'],
  agentScoped: true,
  status: 200,
  input: runsListRequest,
  output: runsListResponse,
  // Policy: a run sees only its own tree (its task is one task); other callers the agent's runs.
  handle: async ({ deps, principal, input }) =>
    listRuns(
      deps,
      await agentOf(deps, principal, input.agent_id),
      input,
      principal?.kind === 'run' ? principal.root_run_id : null,
    ),
});

/** POST /audit/query (bridge): the audit log, oldest first, filtered. */
export const auditQuery = defineRoute({
  method: 'POST',
  path: '/audit/query',
  rpc: 'audit/query',
  policy: ['bridge'],
  agentScoped: false,
  status: 200,
  input: auditQueryRequest,
  output: auditQueryResponse,
  handle: ({ deps, input }) => queryAudit(deps, input),
});
