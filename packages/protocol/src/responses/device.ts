/** Answers of the device-key, enrollment and attestation routes. */
import { z } from 'zod';
import { DEVICE_KEY_PATTERN, ENROLLMENT_CODE_PATTERN } from '../credential-formats.js';
import { agentIdField, fingerprintField, keyIdField } from '../requests/fields.js';
import { base64urlField, timeField } from './fields.js';

/** `/device/issue` (201): the only time `device_key` is ever shown. */
export const deviceIssueResponse = z
  .strictObject({
    key_id: keyIdField,
    agent_id: agentIdField,
    device_key: z.string().regex(DEVICE_KEY_PATTERN),
    label: z.string().nullable(),
    created_at: timeField,
    expires_at: timeField.nullable(),
  })
  .meta({ id: 'IssuedDeviceKey' });

/** `/device/revoke`: a revoked key answers its first `revoked_at` again. */
export const deviceRevokeResponse = z
  .strictObject({ key_id: keyIdField, agent_id: agentIdField, revoked_at: timeField })
  .meta({ id: 'RevokedDeviceKey' });

/** Enrollment ids: `en_` + 96 random bits. */
export const ENROLLMENT_ID_PATTERN = /^en_[A-Za-z0-9_-]{16}$/;

/** `/device/enrollments/create` (201): `code` is a one-time secret, shown once. */
export const enrollmentCreateResponse = z
  .strictObject({
    enrollment_id: z.string().regex(ENROLLMENT_ID_PATTERN),
    code: z.string().regex(ENROLLMENT_CODE_PATTERN),
    agent_id: agentIdField,
    expires_at: timeField,
  })
  .meta({ id: 'Enrollment' });

/**
 * `/device/enroll` (201): the new device key only sealed to the enrolling sealing key
 * (`sealed_device_key`: base64url of `crypto_box_seal`), never in clear.
 */
export const deviceEnrollResponse = z
  .strictObject({
    key_id: keyIdField,
    agent_id: agentIdField,
    sealed_device_key: base64urlField,
    label: z.string().nullable(),
    fingerprint: fingerprintField,
    created_at: timeField,
    expires_at: timeField.nullable(),
  })
  .meta({ id: 'EnrolledDeviceKey' });

/** Why an attestation about a key the caller may see is not valid. */
export const ATTESTATION_REASONS = [
  'key_revoked',
  'key_expired',
  'not_enrolled',
  'bad_signature',
  'agent_disabled',
] as const;

/**
 * `/attestations/verify`: the verdict about a key the caller may see (the bridge, or the key's
 * own agent), or `{valid: false, reason: "unknown_key"}` for a key that does not exist or that
 * the caller may not learn about.
 */
export const attestationsVerifyResponse = z
  .union([
    z
      .strictObject({
        valid: z.boolean(),
        agent_id: agentIdField,
        key_id: keyIdField,
        fingerprint: fingerprintField.nullable(),
        reason: z.enum(ATTESTATION_REASONS).optional(),
      })
      .meta({ id: 'AttestationVerdict' }),
    z
      .strictObject({ valid: z.literal(false), reason: z.literal('unknown_key') })
      .meta({ id: 'UnknownKeyVerdict' }),
  ])
  .meta({ id: 'AttestationVerification' });
