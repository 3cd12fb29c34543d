/**
 * Attestations: a device signs `agentpack-attestation-v1\n<job_id>\n<input_sha256>\n
 * <output_sha256>\n<rc>` with its pinned Ed25519 key; anyone with a credential can ask whether
 * a signature is valid for a key. A revoked key's attestations are no longer valid.
 */
import {
  decodeRawKey,
  ed25519PublicKeyObject,
  verifyAttestationSignature,
} from '@agentpack-identity/protocol';
import type { CoreDeps } from './deps.js';
import { isActive } from './device-keys.js';
import { ApiError } from './errors.js';

export interface AttestationInput {
  key_id: string;
  job_id: string;
  input_sha256: string;
  output_sha256: string;
  rc: number;
  signature: string;
}

export type AttestationReason = 'key_revoked' | 'key_expired' | 'not_enrolled' | 'bad_signature';

export async function verifyAttestation(
  deps: CoreDeps,
  input: AttestationInput,
): Promise<{
  valid: boolean;
  agent_id: string;
  key_id: string;
  fingerprint: string | null;
  reason?: AttestationReason;
}> {
  const [found] = await deps.store.find('device_keys', 'key_id', input.key_id, 1);
  if (found === undefined)
    throw new ApiError('not_found', 'no such device key', { key_id: input.key_id });
  const doc = found.doc;
  const answer = {
    agent_id: doc.agent_id,
    key_id: doc.key_id,
    fingerprint: doc.fingerprint ?? null,
  };
  const raw =
    typeof doc.signing_public_key === 'string' ? decodeRawKey(doc.signing_public_key) : null;
  if (raw === null) return { valid: false, ...answer, reason: 'not_enrolled' };
  const good = verifyAttestationSignature(ed25519PublicKeyObject(raw), input, input.signature);
  if (!good) return { valid: false, ...answer, reason: 'bad_signature' };
  if (doc.revoked_at !== null) return { valid: false, ...answer, reason: 'key_revoked' };
  if (!isActive(doc, deps.clock.now())) return { valid: false, ...answer, reason: 'key_expired' };
  return { valid: true, ...answer };
}
