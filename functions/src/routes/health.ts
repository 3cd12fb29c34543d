/** GET /healthz: liveness, public. */
import { z } from 'zod';
import { defineRoute } from './route.js';

export const healthz = defineRoute({
  method: 'GET',
  path: '/healthz',
  rpc: 'healthz',
  policy: 'public',
  agentScoped: false,
  status: 200,
  input: z.strictObject({}),
  handle: async () => ({ ok: true }),
});
