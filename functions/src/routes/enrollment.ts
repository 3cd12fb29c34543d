/** Enrolled devices: mint an enrollment code (bridge) and enroll with it (the code is the credential). */
import {
  deviceEnrollRequest,
  deviceEnrollResponse,
  enrollmentCreateRequest,
  enrollmentCreateResponse,
} from '@agentpack-identity/protocol';
import { createEnrollment, enrollDevice } from '../core/enrollments.js';
import { defineRoute, requirePrincipal } from './route.js';

/** POST /device/enrollments/create (bridge): a one-time code, shown once. */
export const enrollmentsCreate = defineRoute({
  method: 'POST',
  path: '/device/enrollments/create',
  rpc: 'device/enrollments/create',
  policy: ['bridge'],
  agentScoped: false,
  status: 201,
  input: enrollmentCreateRequest,
  output: enrollmentCreateResponse,
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
  input: deviceEnrollRequest,
  output: deviceEnrollResponse,
  handle: ({ deps, input }) => enrollDevice(deps, input),
});
