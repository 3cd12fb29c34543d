/**
 * The device key of a `/device/enroll` answer. The service answers it only sealed to the
 * enrolling sealing key (`sealed_device_key`: base64url of `crypto_box_seal`), never in clear;
 * this opens it with the device's private sealing key, as the CLI does. It throws (failing the
 * test) when the answer carries a clear `device_key`, or a sealed key that does not open to a
 * well-formed device key.
 */
import { isWellFormedDeviceKey, openSealed } from '@agentpack-identity/protocol';

/** An X25519 key pair as raw bytes, as `generateDeviceKeys().sealing` is. */
export interface SealingPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

export function openEnrolledKey(answer: unknown, sealing: SealingPair): string {
  if (typeof answer !== 'object' || answer === null) throw new Error('no enrollment answer');
  const body = answer as Record<string, unknown>;
  if (Object.hasOwn(body, 'device_key')) {
    throw new Error('the enrollment answer carries a clear device_key');
  }
  const sealed = body['sealed_device_key'];
  if (
    typeof sealed !== 'string' ||
    Buffer.from(sealed, 'base64url').toString('base64url') !== sealed
  ) {
    throw new Error('the enrollment answer has no base64url sealed_device_key');
  }
  const opened = openSealed(
    Buffer.from(sealed, 'base64url'),
    sealing.publicKey,
    sealing.privateKey,
  );
  if (opened === null) throw new Error('the sealed_device_key does not open with this sealing key');
  const key = Buffer.from(opened).toString('utf8');
  if (!isWellFormedDeviceKey(key)) throw new Error('the sealed_device_key is not a device key');
  return key;
}
