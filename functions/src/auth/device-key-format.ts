/**
 * The device key's wire format: `apdk_` + 43 base64url characters (256 random bits) + 6
 * base64url characters of checksum. The fixed prefix lets secret scanners spot a leaked key;
 * the checksum lets us refuse a mistyped or truncated key without touching the store.
 */
import { createHash, randomBytes } from 'node:crypto';

export const DEVICE_KEY_PREFIX = 'apdk_';
const BODY_LENGTH = 43; // base64url of 32 bytes
const CHECKSUM_LENGTH = 6; // base64url of 4 bytes
const DEVICE_KEY_PATTERN = /^apdk_[A-Za-z0-9_-]{49}$/;

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

/**
 * The digest under which a device key is stored and looked up. A key carries 256 random bits,
 * so a plain SHA-256 cannot be reversed or brute-forced; no salt is needed for that.
 */
export function deviceKeyDigest(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

/** A fresh public handle for a device key, used to list and revoke it. */
export function generateKeyId(): string {
  return `dk_${randomBytes(12).toString('base64url')}`;
}
