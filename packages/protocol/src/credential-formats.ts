/**
 * The bearer credentials' wire formats. A device key is `apdk_` + 43 base64url characters
 * (256 random bits) + 6 base64url characters of checksum: the fixed prefix lets secret scanners
 * spot a leaked key, the checksum lets the service refuse a mistyped or truncated key without
 * touching the store. An enrollment code is `apen_` + 256 random bits, used once.
 */
import { createHash, randomBytes } from 'node:crypto';

export const DEVICE_KEY_PREFIX = 'apdk_';
const BODY_LENGTH = 43; // base64url of 32 bytes
const CHECKSUM_LENGTH = 6; // base64url of 4 bytes
/** The shape of a device key (its checksum is checked by {@link isWellFormedDeviceKey}). */
export const DEVICE_KEY_PATTERN = /^apdk_[A-Za-z0-9_-]{49}$/;

/** Enrollment codes: `apen_` + 256 random bits. Shown once, stored as a digest. */
export const ENROLLMENT_CODE_PATTERN = /^apen_[A-Za-z0-9_-]{43}$/;

function checksum(body: string): string {
  return createHash('sha256').update(body).digest().subarray(0, 4).toString('base64url');
}

/** A fresh device key: shown to its holder once, never stored. */
export function generateDeviceKey(): string {
  const body = randomBytes(32).toString('base64url');
  return `${DEVICE_KEY_PREFIX}${body}${checksum(body)}`;
}

/** True when `key` has the device key's shape and a matching checksum. */
export function isWellFormedDeviceKey(key: string): boolean {
  if (!DEVICE_KEY_PATTERN.test(key)) return false;
  const body = key.slice(DEVICE_KEY_PREFIX.length, DEVICE_KEY_PREFIX.length + BODY_LENGTH);
  const sum = key.slice(DEVICE_KEY_PREFIX.length + BODY_LENGTH);
  return sum.length === CHECKSUM_LENGTH && sum === checksum(body);
}

/** A fresh one-time enrollment code. */
export function generateEnrollmentCode(): string {
  return `apen_${randomBytes(32).toString('base64url')}`;
}
