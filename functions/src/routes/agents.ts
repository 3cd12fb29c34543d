/** Routes under /agents: mint, read, disable, enable and retire agents. */
import {
  agentResponse,
  agentsCreateRequest,
  agentsGetRequest,
  agentsRetireRequest,
  agentsRetireResponse,
  agentToggleRequest,
} from '@agentpack-identity/protocol';
import { createAgent, getAgent, setAgentDisabled } from '../core/agents.js';
import { retireAgent } from '../core/retire.js';
import { actingAgent, defineRoute, requirePrincipal } from './route.js';

/** POST /agents/create (bridge): mint an agent, with a chosen or generated id. */
export const agentsCreate = defineRoute({
  method: 'POST',
  path: '/agents/create',
  rpc: 'agents/create',
  policy: ['bridge'],
  agentScoped: false,
  status: 201,
  input: agentsCreateRequest,
  output: agentResponse,
  handle: ({ deps, principal, input }) => createAgent(deps, requirePrincipal(principal), input),
});

/**
 * POST /agents/get: the bridge reads any agent; a device key or token reads its own agent, a
 * delegate the delegator.
 */
export const agentsGet = defineRoute({
  method: 'POST',
  path: '/agents/get',
  rpc: 'agents/get',
  policy: ['bridge', 'device', 'token', 'run', 'delegated'],
  agentScoped: true,
  status: 200,
  input: agentsGetRequest,
  output: agentResponse,
  handle: async ({ deps, principal, input }) =>
    getAgent(deps, actingAgent(principal, input.agent_id)),
});

/** POST /agents/disable (bridge): nothing acts for the agent from the next request on. */
export const agentsDisable = defineRoute({
  method: 'POST',
  path: '/agents/disable',
  rpc: 'agents/disable',
  policy: ['bridge'],
  agentScoped: false,
  status: 200,
  input: agentToggleRequest,
  output: agentResponse,
  handle: ({ deps, principal, input }) =>
    setAgentDisabled(deps, requirePrincipal(principal), input.agent_id, true),
});

/** POST /agents/enable (bridge). */
export const agentsEnable = defineRoute({
  method: 'POST',
  path: '/agents/enable',
  rpc: 'agents/enable',
  policy: ['bridge'],
  agentScoped: false,
  status: 200,
  input: agentToggleRequest,
  output: agentResponse,
  handle: ({ deps, principal, input }) =>
    setAgentDisabled(deps, requirePrincipal(principal), input.agent_id, false),
});

/**
 * POST /agents/retire (bridge): the end of an agent (core/retire.ts). `confirm` must repeat
 * `agent_id` (the schema refuses anything else, 400). Resumable and idempotent: call it again
 * after an interruption; it answers the same `retired_at` and cumulative counts.
 */
export const agentsRetire = defineRoute({
  method: 'POST',
  path: '/agents/retire',
  rpc: 'agents/retire',
  policy: ['bridge'],
  agentScoped: false,
  status: 200,
  input: agentsRetireRequest,
  output: agentsRetireResponse,
  handle: ({ deps, principal, input }) =>
    retireAgent(deps, requirePrincipal(principal), input.agent_id),
});
