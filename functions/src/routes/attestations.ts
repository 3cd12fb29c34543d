/**
 * POST /attestations/verify: is this signature a valid attestation by that device key? Any
 * credential may ask; only the bridge and the key's own agent learn more than `unknown_key`
 * (the rule is in core/attestations.ts).
 */
import { z } from 'zod';
import { verifyAttestation } from '../core/attestations.js';
import { defineRoute, requirePrincipal } from './route.js';
import { keyIdSchema } from './schemas.js';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');

export const attestationsVerify = defineRoute({
  method: 'POST',
  path: '/attestations/verify',
  rpc: 'attestations/verify',
  policy: ['bridge', 'device', 'token', 'run', 'delegated'],
  agentScoped: false,
  status: 200,
  input: z.strictObject({
    key_id: keyIdSchema,
    job_id: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[^\x00-\x1f\x7f]+$/, 'job_id must not contain control characters'),
    input_sha256: sha256Hex,
    output_sha256: sha256Hex,
    rc: z.number().int().min(-2147483648).max(2147483647),
    signature: z.string().max(200),
  }),
  handle: ({ deps, principal, input }) =>
    verifyAttestation(deps, requirePrincipal(principal), input),
});
