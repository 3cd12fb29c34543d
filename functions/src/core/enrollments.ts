/**
 * Device enrollment: an operator mints a one-time code (optionally with the fingerprint read
 * out of band from the device), the device presents it with its two public keys, and the keys
 * are pinned to a new device key. Pinned keys never change: rotation is evict and re-enroll
 * (`replaces_key_id`, in the same transaction as the enrollment). The new device key is answered
 * only sealed to the enrolling sealing key, so whoever relays the code and the device's public
 * keys on its behalf learns nothing it can use.
 */
import {
  decodeRawKey,
  deviceFingerprint,
  ENROLLMENT_CODE_PATTERN,
  generateDeviceKey,
  generateEnrollmentCode,
  sealTo,
  signingKeyProblem,
  x25519PublicKeyProblem,
} from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { DeviceKeyDoc, EnrollmentDoc } from '../ports/store.js';
import { requireAgent } from './agents.js';
import type { CoreDeps } from './deps.js';
import { actorOf, type AuditEvent } from './audit.js';
import { isActive } from './device-keys.js';
import { ApiError } from './errors.js';
import { generateEnrollmentId, generateKeyId, listKey } from './ids.js';
import type { DevicePrincipal, Principal } from './principal.js';
import { revokeRunsOf } from './runs.js';

export const ENROLLMENT_TTL_DEFAULT_SECONDS = 600;
export const ENROLLMENT_TTL_MAX_SECONDS = 7 * 24 * 3600;

export interface CreatedEnrollment {
  enrollment_id: string;
  code: string;
  agent_id: string;
  expires_at: string;
}

/** Mints a one-time enrollment code for `agent_id` (bridge only). */
export async function createEnrollment(
  deps: CoreDeps,
  principal: Principal,
  input: {
    agent_id: string;
    expected_fingerprint?: string | undefined;
    replaces_key_id?: string | undefined;
    ttl_seconds?: number | undefined;
    label?: string | undefined;
  },
): Promise<CreatedEnrollment> {
  const ttl = input.ttl_seconds ?? ENROLLMENT_TTL_DEFAULT_SECONDS;
  if (ttl > ENROLLMENT_TTL_MAX_SECONDS) {
    throw new ApiError('invalid_argument', 'ttl_seconds is above the maximum', {
      field: 'ttl_seconds',
      max_ttl_seconds: ENROLLMENT_TTL_MAX_SECONDS,
    });
  }
  const code = generateEnrollmentCode();
  return deps.store.transact(async (tx) => {
    const agent = await requireAgent(tx, input.agent_id);
    if (agent.disabled) throw new ApiError('permission_denied', 'the agent is disabled');
    if (input.replaces_key_id !== undefined) {
      const [old] = await tx.find('device_keys', 'key_id', input.replaces_key_id, 1);
      if (old === undefined || old.doc.agent_id !== agent.agent_id) {
        throw new ApiError('not_found', 'no such device key for this agent', {
          key_id: input.replaces_key_id,
        });
      }
    }
    const nowMs = deps.clock.now();
    const doc: EnrollmentDoc = {
      enrollment_id: generateEnrollmentId(),
      agent_id: agent.agent_id,
      expected_fingerprint: input.expected_fingerprint ?? null,
      replaces_key_id: input.replaces_key_id ?? null,
      label: input.label ?? null,
      created_at: rfc3339(nowMs),
      expires_at: rfc3339(nowMs + ttl * 1000),
      used_at: null,
      key_id: null,
      digest: 'keyed',
    };
    tx.set('device_enrollments', deps.digest('enrollment_code', code), doc);
    tx.audit({
      category: 'auth',
      action: 'device.enrollment_create',
      actor: actorOf(principal),
      target: { agent_id: agent.agent_id },
      at: doc.created_at,
      details: {
        enrollment_id: doc.enrollment_id,
        expected_fingerprint: doc.expected_fingerprint,
        replaces_key_id: doc.replaces_key_id,
      },
    });
    return {
      enrollment_id: doc.enrollment_id,
      code,
      agent_id: doc.agent_id,
      expires_at: doc.expires_at,
    };
  });
}

/**
 * The answer of an enrollment: the new key's record, its pinned fingerprint, and the device key
 * itself only as `sealed_device_key` — base64url of libsodium's `crypto_box_seal` of its UTF-8
 * text to the enrolling `sealing_public_key`. Policy: the clear key is never in this answer, so
 * a party that relays the code and the device's true public keys gets nothing it can use; only
 * the holder of the sealing private key opens it.
 */
export interface EnrolledDeviceKey {
  key_id: string;
  agent_id: string;
  sealed_device_key: string;
  label: string | null;
  fingerprint: string;
  created_at: string;
  expires_at: string | null;
}

/**
 * Enrolls a device with a one-time code (the code is the credential). Keys are checked first
 * (400); an unknown, used or expired code is 401; a fingerprint that differs from the expected
 * one is 409 `fingerprint_mismatch`, the code stays unused and the attempt is audited.
 */
export async function enrollDevice(
  deps: CoreDeps & { logger: Logger },
  input: {
    code: string;
    sealing_public_key: string;
    signing_public_key: string;
    label?: string | undefined;
  },
): Promise<EnrolledDeviceKey> {
  const sealing = decodeRawKey(input.sealing_public_key);
  const signing = decodeRawKey(input.signing_public_key);
  const sealingProblem =
    sealing === null ? 'must be 32 bytes as unpadded base64url' : x25519PublicKeyProblem(sealing);
  if (sealingProblem !== null) {
    throw new ApiError('invalid_argument', `sealing_public_key: ${sealingProblem}`, {
      field: 'sealing_public_key',
    });
  }
  const signingProblem =
    signing === null ? 'must be 32 bytes as unpadded base64url' : signingKeyProblem(signing);
  if (signingProblem !== null) {
    throw new ApiError('invalid_argument', `signing_public_key: ${signingProblem}`, {
      field: 'signing_public_key',
    });
  }
  const sealingKey = sealing!;
  const fingerprint = deviceFingerprint(sealingKey, signing!);
  const refuse = (reason: string): never => {
    deps.logger.warn('auth.failed', {
      credential: 'enrollment_code',
      reason,
      path: '/device/enroll',
    });
    throw new ApiError('unauthenticated', 'the enrollment code is not valid');
  };
  if (!ENROLLMENT_CODE_PATTERN.test(input.code)) refuse('malformed');
  const digest = deps.digest('enrollment_code', input.code);
  const deviceKey = generateDeviceKey();
  // Sealed once, before the transaction (which may be retried): the only form the key leaves in.
  const sealedDeviceKey = Buffer.from(sealTo(sealingKey, Buffer.from(deviceKey, 'utf8'))).toString(
    'base64url',
  );
  type Outcome =
    { ok: EnrolledDeviceKey; evicted: string | null } | { mismatch: true } | { refused: string };
  const outcome = await deps.store.transact(async (tx): Promise<Outcome> => {
    const enrollment = await tx.get('device_enrollments', digest);
    if (enrollment === null) return { refused: 'unknown' };
    const agent = await tx.get('agents', enrollment.agent_id);
    const replaced =
      enrollment.replaces_key_id === null
        ? undefined
        : (await tx.find('device_keys', 'key_id', enrollment.replaces_key_id, 1))[0];
    const nowMs = deps.clock.now();
    const at = rfc3339(nowMs);
    if (enrollment.used_at !== null) return { refused: 'used' };
    if (Date.parse(enrollment.expires_at) <= nowMs) return { refused: 'expired' };
    if (agent === null || agent.disabled) {
      throw new ApiError('permission_denied', 'the agent is disabled');
    }
    const base: Omit<AuditEvent, 'action' | 'details'> = {
      category: 'auth',
      actor: { kind: 'device', agent_id: agent.agent_id },
      target: { agent_id: agent.agent_id },
      at,
    };
    if (
      enrollment.expected_fingerprint !== null &&
      enrollment.expected_fingerprint !== fingerprint
    ) {
      // A key-change attempt: recorded, and the code stays usable by the right device.
      tx.audit({
        ...base,
        action: 'device.enroll_mismatch',
        details: {
          enrollment_id: enrollment.enrollment_id,
          expected_fingerprint: enrollment.expected_fingerprint,
          presented_fingerprint: fingerprint,
        },
      });
      return { mismatch: true };
    }
    const keyId = generateKeyId();
    const doc: DeviceKeyDoc = {
      key_id: keyId,
      agent_id: agent.agent_id,
      label: input.label ?? enrollment.label,
      created_at: at,
      list_key: listKey(at, keyId),
      expires_at: null,
      revoked_at: null,
      sealing_public_key: input.sealing_public_key,
      signing_public_key: input.signing_public_key,
      fingerprint,
      digest: 'keyed',
    };
    tx.set('device_keys', deps.digest('device_key', deviceKey), doc);
    tx.set('device_enrollments', digest, { ...enrollment, used_at: at, key_id: doc.key_id });
    tx.audit({
      ...base,
      actor: { kind: 'device', agent_id: agent.agent_id, key_id: doc.key_id },
      target: { agent_id: agent.agent_id, key_id: doc.key_id },
      action: 'device.enroll',
      details: { enrollment_id: enrollment.enrollment_id, fingerprint },
    });
    const evicts =
      replaced !== undefined &&
      replaced.doc.agent_id === agent.agent_id &&
      isActive(replaced.doc, nowMs);
    if (evicts) {
      tx.set('device_keys', replaced.id, { ...replaced.doc, revoked_at: at });
      tx.audit({
        ...base,
        actor: { kind: 'device', agent_id: agent.agent_id, key_id: doc.key_id },
        target: { agent_id: agent.agent_id, key_id: replaced.doc.key_id },
        action: 'device.evict',
        details: { enrollment_id: enrollment.enrollment_id, replaced_by: doc.key_id },
      });
    }
    return {
      ok: {
        key_id: doc.key_id,
        agent_id: doc.agent_id,
        sealed_device_key: sealedDeviceKey,
        label: doc.label,
        fingerprint,
        created_at: doc.created_at,
        expires_at: doc.expires_at,
      },
      evicted: evicts ? replaced.doc.key_id : null,
    };
  });
  if ('refused' in outcome) return refuse(outcome.refused);
  if ('mismatch' in outcome) {
    throw new ApiError(
      'failed_precondition',
      'the device fingerprint differs from the expected one',
      {
        reason: 'fingerprint_mismatch',
      },
    );
  }
  // The evicted key is revoked: the run trees it spawned end with it, as on revoke.
  if (outcome.evicted !== null) {
    // The actor is the newly enrolled device, as on the evict event itself.
    const enrolled: DevicePrincipal = {
      kind: 'device',
      agent_id: outcome.ok.agent_id,
      key_id: outcome.ok.key_id,
      key_digest: deps.digest('device_key', deviceKey),
      sealing_public_key: input.sealing_public_key,
      expires_at: outcome.ok.expires_at,
    };
    await revokeRunsOf(deps, enrolled, {
      agent_id: outcome.ok.agent_id,
      key_id: outcome.evicted,
      action: 'device.evict',
    });
  }
  return outcome.ok;
}
