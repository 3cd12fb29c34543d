/**
 * POST /attestations/verify: is this signature a valid attestation by that device key? Any
 * credential may ask; only the bridge and the key's own agent learn more than `unknown_key`
 * (the rule is in core/attestations.ts).
 */
import {
  attestationsVerifyRequest,
  attestationsVerifyResponse,
} from '@agentpack-identity/protocol';
import { verifyAttestation } from '../core/attestations.js';
import { defineRoute, requirePrincipal } from './route.js';

export const attestationsVerify = defineRoute({
  method: 'POST',
  path: '/attestations/verify',
  rpc: 'attestations/verify',
  policy: ['bridge', 'device', 'token', 'run', 'delegated'],
  agentScoped: false,
  status: 200,
  input: attestationsVerifyRequest,
  output: attestationsVerifyResponse,
  handle: ({ deps, principal, input }) =>
    verifyAttestation(deps, requirePrincipal(principal), input),
});
