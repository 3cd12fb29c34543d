/** Ephemeral runs: spawn, complete, revoke, and the public verification document. */
import { z } from 'zod';
import { RUN_ID_PATTERN } from '@agentpack-identity/protocol';
import { completeRun, revokeRun, runIdentity, spawnRun } from '../core/runs.js';
import { agentPrincipal, defineRoute, requirePrincipal } from './route.js';
import { taskSchema, ttlSecondsSchema } from './schemas.js';

const runIdSchema = z.string().regex(RUN_ID_PATTERN, 'run_id is not a run id');

/**
 * POST /runs/spawn: by a device key or token of the agent, or by a run (a child). Not
 * delegated: a delegate cannot mint identities for the delegator.
 */
export const runsSpawn = defineRoute({
  method: 'POST',
  path: '/runs/spawn',
  rpc: 'runs/spawn',
  policy: ['device', 'token', 'run'],
  agentScoped: true,
  status: 201,
  input: z.strictObject({
    task: taskSchema,
    scope: z.array(z.string().max(200)).min(1).max(32),
    ttl_seconds: ttlSecondsSchema,
    public_key: z.string().max(100),
  }),
  handle: ({ deps, principal, input }) => spawnRun(deps, agentPrincipal(principal), input),
});

/** POST /runs/complete: the run itself, with its subtree. */
export const runsComplete = defineRoute({
  method: 'POST',
  path: '/runs/complete',
  rpc: 'runs/complete',
  policy: ['run'],
  agentScoped: true,
  // Ending itself is always within a run's rights, whatever its scope.
  scopeCheck: 'handler',
  status: 200,
  input: z.strictObject({}),
  handle: ({ deps, principal }) => completeRun(deps, agentPrincipal(principal)),
});

/** POST /runs/revoke: the run's agent (device key), an ancestor run, or the bridge. */
export const runsRevoke = defineRoute({
  method: 'POST',
  path: '/runs/revoke',
  rpc: 'runs/revoke',
  policy: ['bridge', 'device', 'run'],
  agentScoped: true,
  scopeCheck: 'handler',
  status: 200,
  input: z.strictObject({ run_id: runIdSchema }),
  handle: ({ deps, principal, input }) =>
    revokeRun(deps, requirePrincipal(principal), input.run_id),
});

/** GET /.well-known/agentpack-agent-identity/<run_id>: a run's public key and live status. */
export const runWellKnown = defineRoute({
  method: 'GET',
  path: '/.well-known/agentpack-agent-identity/',
  match: 'prefix',
  rpc: '.well-known/agentpack-agent-identity',
  policy: 'public',
  agentScoped: false,
  status: 200,
  // Status changes the moment a run ends: never cached.
  headers: { 'cache-control': 'no-store' },
  input: z.strictObject({}),
  handle: ({ deps, rest }) => runIdentity(deps, rest),
});
