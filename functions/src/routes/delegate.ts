/** Routes under /delegate: grant and revoke delegations. */
import {
  delegateRequest,
  delegateRevokeRequest,
  delegateRevokeResponse,
  delegationResponse,
} from '@agentpack-identity/protocol';
import { createDelegation, revokeDelegation } from '../core/delegations.js';
import { agentPrincipal, defineRoute, requirePrincipal } from './route.js';

/**
 * POST /delegate: the caller's agent grants `to_agent` a scoped, expiring right to act for it.
 * Not `delegated` in the policy: a delegated request can never create a delegation.
 */
export const delegate = defineRoute({
  method: 'POST',
  path: '/delegate',
  rpc: 'delegate',
  policy: ['device', 'token'],
  agentScoped: true,
  status: 201,
  input: delegateRequest,
  output: delegationResponse,
  handle: ({ deps, principal, input }) => createDelegation(deps, agentPrincipal(principal), input),
});

/** POST /delegate/revoke: by the delegating agent, the delegate, or the bridge. */
export const delegateRevoke = defineRoute({
  method: 'POST',
  path: '/delegate/revoke',
  rpc: 'delegate/revoke',
  policy: ['bridge', 'device', 'token'],
  agentScoped: true,
  status: 200,
  input: delegateRevokeRequest,
  output: delegateRevokeResponse,
  handle: ({ deps, principal, input }) =>
    revokeDelegation(deps, requirePrincipal(principal), input.delegation_id),
});
