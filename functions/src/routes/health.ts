/** GET /healthz: liveness, public. */
import { emptyRequest, healthzResponse } from '@agentpack-identity/protocol';
import { defineRoute } from './route.js';

export const healthz = defineRoute({
  method: 'GET',
  path: '/healthz',
  rpc: 'healthz',
  policy: 'public',
  agentScoped: false,
  status: 200,
  input: emptyRequest,
  output: healthzResponse,
  handle: async () => ({ ok: true as const }),
});
