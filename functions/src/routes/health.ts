/** GET /healthz: liveness, public. */
import { emptyRequest } from '@agentpack-identity/protocol';
import { defineRoute } from './route.js';

export const healthz = defineRoute({
  method: 'GET',
  path: '/healthz',
  rpc: 'healthz',
  policy: 'public',
  agentScoped: false,
  status: 200,
  input: emptyRequest,
  handle: async () => ({ ok: true }),
});
