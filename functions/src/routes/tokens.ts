/** POST /tokens/register (bridge): the ledger entry of a minted capability token. */
import { z } from 'zod';
import { registerToken } from '../core/token-ledger.js';
import { defineRoute, requirePrincipal } from './route.js';
import { agentIdSchema } from './schemas.js';

const unixSeconds = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 40);

export const tokensRegister = defineRoute({
  method: 'POST',
  path: '/tokens/register',
  rpc: 'tokens/register',
  policy: ['bridge'],
  agentScoped: false,
  status: 201,
  input: z
    .strictObject({
      jti: z
        .string()
        .min(1)
        .max(128)
        .regex(/^[\x21-\x7e]+$/, 'jti must be printable ASCII'),
      sub: agentIdSchema,
      scope: z.array(z.string().min(1).max(200)).min(1).max(64),
      iat: unixSeconds,
      exp: unixSeconds,
      kid: z.string().min(1).max(128),
    })
    .refine((t) => t.exp > t.iat, { message: 'exp must be after iat', path: ['exp'] }),
  handle: ({ deps, principal, input }) => registerToken(deps, requirePrincipal(principal), input),
});
