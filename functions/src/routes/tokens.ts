/** POST /tokens/register (bridge): the ledger entry of a minted capability token. */
import { tokensRegisterRequest, tokensRegisterResponse } from '@agentpack-identity/protocol';
import { registerToken } from '../core/token-ledger.js';
import { defineRoute, requirePrincipal } from './route.js';

export const tokensRegister = defineRoute({
  method: 'POST',
  path: '/tokens/register',
  rpc: 'tokens/register',
  policy: ['bridge'],
  agentScoped: false,
  status: 201,
  input: tokensRegisterRequest,
  output: tokensRegisterResponse,
  handle: ({ deps, principal, input }) => registerToken(deps, requirePrincipal(principal), input),
});
