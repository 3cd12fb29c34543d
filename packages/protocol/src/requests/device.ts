/** Requests of the device-key and enrollment routes. */
import { z } from 'zod';
import {
  agentIdField,
  fingerprintField,
  keyIdField,
  labelField,
  publicKeyField,
  sha256HexField,
  ttlSecondsField,
} from './fields.js';

export const deviceIssueRequest = z.strictObject({
  agent_id: agentIdField.optional(),
  label: labelField.optional(),
  ttl_seconds: ttlSecondsField.optional(),
  rotate: z.boolean().optional(),
});

export const deviceRevokeRequest = z.strictObject({ key_id: keyIdField.optional() });

export const enrollmentCreateRequest = z.strictObject({
  agent_id: agentIdField,
  expected_fingerprint: fingerprintField.optional(),
  replaces_key_id: keyIdField.optional(),
  ttl_seconds: ttlSecondsField.optional(),
  label: labelField.optional(),
});

/** The code is the credential; its format and the keys' curves are checked by the service. */
export const deviceEnrollRequest = z.strictObject({
  code: z.string().max(100),
  sealing_public_key: publicKeyField,
  signing_public_key: publicKeyField,
  label: labelField.optional(),
});

export const attestationsVerifyRequest = z.strictObject({
  key_id: keyIdField,
  job_id: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^\x00-\x1f\x7f]+$/, 'job_id must not contain control characters'),
  input_sha256: sha256HexField,
  output_sha256: sha256HexField,
  rc: z.number().int().min(-2147483648).max(2147483647),
  signature: z.string().max(200),
});
