/** Routes under /secrets: an agent's own versioned, encrypted secrets. */
import { z } from 'zod';
import { getSecret, putSecret, SECRET_NAME_PATTERN } from '../core/secrets.js';
import { agentPrincipal, defineRoute } from './route.js';

const nameSchema = z
  .string()
  .regex(SECRET_NAME_PATTERN, 'name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$');
const versionSchema = z.number().int().positive();

/** POST /secrets/put: a new version; `cas` guards against lost updates. */
export const secretsPut = defineRoute({
  method: 'POST',
  path: '/secrets/put',
  rpc: 'secrets/put',
  policy: ['device', 'token', 'delegated'],
  agentScoped: true,
  status: 200,
  input: z.strictObject({
    name: nameSchema,
    value: z.string(),
    cas: z.number().int().nonnegative().optional(),
  }),
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) => putSecret(deps, agentPrincipal(principal), input),
});

/** POST /secrets/get: the current version, or the one asked for. */
export const secretsGet = defineRoute({
  method: 'POST',
  path: '/secrets/get',
  rpc: 'secrets/get',
  policy: ['device', 'token', 'delegated'],
  agentScoped: true,
  status: 200,
  input: z.strictObject({ name: nameSchema, version: versionSchema.optional() }),
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) => getSecret(deps, agentPrincipal(principal), input),
});
