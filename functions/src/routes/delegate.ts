/** Routes under /delegate: grant and revoke delegations. */
import { z } from 'zod';
import { createDelegation, DELEGATION_ID_PATTERN, revokeDelegation } from '../core/delegations.js';
import { agentPrincipal, defineRoute, requirePrincipal } from './route.js';
import { agentIdSchema, ttlSecondsSchema } from './schemas.js';

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
  input: z.strictObject({
    to_agent: agentIdSchema,
    scope: z.array(z.string().max(200)).min(1).max(32),
    ttl_seconds: ttlSecondsSchema,
  }),
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
  input: z.strictObject({
    delegation_id: z.string().regex(DELEGATION_ID_PATTERN, 'delegation_id is not a delegation id'),
  }),
  handle: ({ deps, principal, input }) =>
    revokeDelegation(deps, requirePrincipal(principal), input.delegation_id),
});
