/** Enrolled devices: mint an enrollment code (bridge) and enroll with it (the code is the credential). */
import { z } from 'zod';
import { createEnrollment, enrollDevice, FINGERPRINT_PATTERN } from '../core/enrollments.js';
import { defineRoute, requirePrincipal } from './route.js';
import { agentIdSchema, keyIdSchema, labelSchema, ttlSecondsSchema } from './schemas.js';

/** POST /device/enrollments/create (bridge): a one-time code, shown once. */
export const enrollmentsCreate = defineRoute({
  method: 'POST',
  path: '/device/enrollments/create',
  rpc: 'device/enrollments/create',
  policy: ['bridge'],
  agentScoped: false,
  status: 201,
  input: z.strictObject({
    agent_id: agentIdSchema,
    expected_fingerprint: z
      .string()
      .regex(FINGERPRINT_PATTERN, 'expected_fingerprint must be SHA256: + 43 base64url characters')
      .optional(),
    replaces_key_id: keyIdSchema.optional(),
    ttl_seconds: ttlSecondsSchema.optional(),
    label: labelSchema.optional(),
  }),
  handle: ({ deps, principal, input }) =>
    createEnrollment(deps, requirePrincipal(principal), input),
});

/**
 * POST /device/enroll: the code in the body is the credential; the device's keys get pinned and
 * the new device key is answered only sealed to `sealing_public_key` (`sealed_device_key`).
 */
export const deviceEnroll = defineRoute({
  method: 'POST',
  path: '/device/enroll',
  rpc: 'device/enroll',
  policy: 'enrollment-code',
  agentScoped: false,
  status: 201,
  input: z.strictObject({
    code: z.string().max(100),
    sealing_public_key: z.string().max(100),
    signing_public_key: z.string().max(100),
    label: labelSchema.optional(),
  }),
  handle: ({ deps, input }) => enrollDevice(deps, input),
});
