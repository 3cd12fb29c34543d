/**
 * Attestations: a device signs `agentpack-attestation-v1\n<job_id>\n<input_sha256>\n
 * <output_sha256>\n<rc>` with its pinned Ed25519 key; a caller asks whether a signature is
 * valid for a key. A revoked or expired key's attestations are no longer valid, nor are those
 * of a key whose agent is disabled, retired or gone.
 */
import {
  decodeRawKey,
  ed25519PublicKeyObject,
  verifyAttestationSignature,
} from '@agentpack-identity/protocol';
import type { CoreDeps } from './deps.js';
import { isActive } from './device-keys.js';
import { actingAgentOf, type Principal } from './principal.js';

export interface AttestationInput {
  key_id: string;
  job_id: string;
  input_sha256: string;
  output_sha256: string;
  rc: number;
  signature: string;
}

export type AttestationReason =
  'key_revoked' | 'key_expired' | 'not_enrolled' | 'bad_signature' | 'agent_disabled';

/** What a caller allowed to see the key learns. */
export interface AttestationVerdict {
  valid: boolean;
  agent_id: string;
  key_id: string;
  fingerprint: string | null;
  reason?: AttestationReason;
}

/** What everyone else learns, about another agent's key or a key that does not exist alike. */
export interface UnknownKeyVerdict {
  valid: false;
  reason: 'unknown_key';
}

const UNKNOWN_KEY: UnknownKeyVerdict = Object.freeze({ valid: false, reason: 'unknown_key' });

/**
 * Who may learn about a key. Policy: the bridge, or a caller acting for the key's own agent —
 * its device key, token or run, and a delegated call by the agent it acts for (the delegator,
 * `actingAgentOf`): a delegate verifies the delegator's keys through the delegation, not its
 * own. Anyone else gets exactly the answer for a key_id that does not exist, so no agent can
 * learn through this route whether another agent's key exists, whom it belongs to, its
 * fingerprint or its state.
 */
function maySee(principal: Principal, keyAgentId: string): boolean {
  return principal.kind === 'bridge' || actingAgentOf(principal) === keyAgentId;
}

/** Verifies an attestation; it reads only the store and the clock. */
export async function verifyAttestation(
  deps: Pick<CoreDeps, 'store' | 'clock'>,
  principal: Principal,
  input: AttestationInput,
): Promise<AttestationVerdict | UnknownKeyVerdict> {
  const [found] = await deps.store.find('device_keys', 'key_id', input.key_id, 1);
  if (found === undefined || !maySee(principal, found.doc.agent_id)) return { ...UNKNOWN_KEY };
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
  // A disabled or retired agent (retiring disables) attests nothing, whatever its keys' state;
  // so does a key whose agent record is gone.
  const agent = await deps.store.get('agents', doc.agent_id);
  if (agent === null || agent.disabled) {
    return { valid: false, ...answer, reason: 'agent_disabled' };
  }
  if (doc.revoked_at !== null) return { valid: false, ...answer, reason: 'key_revoked' };
  if (!isActive(doc, deps.clock.now())) return { valid: false, ...answer, reason: 'key_expired' };
  return { valid: true, ...answer };
}
