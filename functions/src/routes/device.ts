/** Routes under /device: issue (and rotate) and revoke device keys. */
import {
  deviceIssueRequest,
  deviceIssueResponse,
  deviceRevokeRequest,
  deviceRevokeResponse,
} from '@agentpack-identity/protocol';
import { issueDeviceKey, revokeDeviceKey } from '../core/device-keys.js';
import { actingAgent, defineRoute, requirePrincipal } from './route.js';

/**
 * POST /device/issue: the bridge issues for any agent (`agent_id` required); a device key
 * issues for its own agent, and with `rotate: true` also revokes itself in the same
 * transaction.
 */
export const deviceIssue = defineRoute({
  method: 'POST',
  path: '/device/issue',
  rpc: 'device/issue',
  policy: ['bridge', 'device'],
  agentScoped: true,
  status: 201,
  input: deviceIssueRequest,
  output: deviceIssueResponse,
  handle: async ({ deps, principal, input }) =>
    issueDeviceKey(deps, requirePrincipal(principal), {
      ...input,
      agent_id: actingAgent(principal, input.agent_id),
    }),
});

/**
 * POST /device/revoke: the bridge revokes any key by `key_id`; a device key revokes its own
 * agent's keys (default: itself). Another agent's key is 404.
 */
export const deviceRevoke = defineRoute({
  method: 'POST',
  path: '/device/revoke',
  rpc: 'device/revoke',
  policy: ['bridge', 'device'],
  agentScoped: true,
  status: 200,
  input: deviceRevokeRequest,
  output: deviceRevokeResponse,
  handle: ({ deps, principal, input }) =>
    revokeDeviceKey(deps, requirePrincipal(principal), input.key_id),
});
