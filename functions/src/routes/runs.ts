/** Ephemeral runs: spawn, complete, revoke, and the public verification document. */
import {
  emptyRequest,
  runIdentityResponse,
  runsCompleteRequest,
  runsCompleteResponse,
  runsRevokeRequest,
  runsRevokeResponse,
  runsSpawnRequest,
  runsSpawnResponse,
  runsTokenRequest,
  runsTokenResponse,
} from '@agentpack-identity/protocol';
import { completeRun, revokeRun, runIdentity } from '../core/runs.js';
import { runToken } from '../core/run-tokens.js';
import { spawnRun } from '../core/spawn.js';
import { agentPrincipal, defineRoute, requirePrincipal } from './route.js';

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
  input: runsSpawnRequest,
  output: runsSpawnResponse,
  handle: ({ deps, principal, input }) => spawnRun(deps, agentPrincipal(principal), input),
});

/**
 * POST /runs/token: the run itself, a run token for another audience. Always within a run's
 * rights: the token says who the run is, nothing more.
 */
export const runsToken = defineRoute({
  method: 'POST',
  path: '/runs/token',
  rpc: 'runs/token',
  policy: ['run'],
  agentScoped: true,
  scopeCheck: 'handler',
  status: 201,
  input: runsTokenRequest,
  output: runsTokenResponse,
  handle: ({ deps, principal, input }) => runToken(deps, agentPrincipal(principal), input.audience),
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
  input: runsCompleteRequest,
  output: runsCompleteResponse,
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
  input: runsRevokeRequest,
  output: runsRevokeResponse,
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
  input: emptyRequest,
  output: runIdentityResponse,
  handle: ({ deps, rest }) => runIdentity(deps, rest),
});
