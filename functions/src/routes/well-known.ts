/** GET /.well-known/agentpack-identity: issuer, audience and the public capability keys. */
import { emptyRequest } from '@agentpack-identity/protocol';
import { defineRoute } from './route.js';

export const wellKnown = defineRoute({
  method: 'GET',
  path: '/.well-known/agentpack-identity',
  rpc: '.well-known/agentpack-identity',
  policy: 'public',
  agentScoped: false,
  status: 200,
  // Verifiers may cache the keys briefly; a key rotation publishes the new key first.
  headers: { 'cache-control': 'public, max-age=300' },
  input: emptyRequest,
  handle: async ({ deps }) => ({ issuer: deps.issuer, audience: deps.audience, jwks: deps.jwks }),
});
