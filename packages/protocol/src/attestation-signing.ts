/**
 * Job attestations: the string an enrolled device signs to say "this job, with this input,
 * gave this output and exit code", and signing and verifying it.
 */
import type { KeyObject } from 'node:crypto';
import { signText, verifyText } from './signatures.js';

/** The first line of the string a device signs for an attestation. */
export const ATTESTATION_CONTEXT = 'agentpack-attestation-v1';

/** The fields of a job attestation, as `/attestations/verify` takes them. */
export interface AttestationFields {
  job_id: string;
  input_sha256: string;
  output_sha256: string;
  /** The job's exit code: a safe integer. */
  rc: number;
}

/** Control characters, line breaks included: none may appear in a signed field. */
const CONTROL = /[\x00-\x1f\x7f]/;

function attestationProblem(fields: AttestationFields): string | null {
  for (const name of ['job_id', 'input_sha256', 'output_sha256'] as const) {
    const value: unknown = fields[name];
    if (typeof value !== 'string') return `${name} must be a string`;
    if (CONTROL.test(value)) return `${name} must not contain control characters`;
  }
  if (!Number.isSafeInteger(fields.rc)) return 'rc must be an integer';
  return null;
}

/**
 * The string a device signs to attest a job:
 * `agentpack-attestation-v1\n<job_id>\n<input_sha256>\n<output_sha256>\n<rc>`. Throws a
 * TypeError when a field holds a control character (a line break would let one signature
 * stand for two different attestations) or `rc` is not a safe integer.
 */
export function attestationString(fields: AttestationFields): string {
  const problem = attestationProblem(fields);
  if (problem !== null) throw new TypeError(`cannot sign this attestation: ${problem}`);
  return [
    ATTESTATION_CONTEXT,
    fields.job_id,
    fields.input_sha256,
    fields.output_sha256,
    String(fields.rc),
  ].join('\n');
}

/**
 * Signs an attestation with the device's Ed25519 seed (or private KeyObject) and returns the
 * signature as base64url, as `/attestations/verify` takes it.
 */
export function signAttestation(
  fields: AttestationFields,
  signingSeed: Uint8Array | KeyObject,
): string {
  return signText(attestationString(fields), signingSeed);
}

/**
 * True when `signature` (base64url) is a valid attestation signature of `fields` by
 * `publicKey`. Never throws: malformed fields or signature give false.
 */
export function verifyAttestationSignature(
  publicKey: KeyObject,
  fields: AttestationFields,
  signature: string,
): boolean {
  if (attestationProblem(fields) !== null) return false;
  return verifyText(publicKey, attestationString(fields), signature);
}
