/**
 * The project bridge keys. Several may be valid at once so an operator can rotate without
 * downtime. Each presented key is compared with every configured key in constant time (over
 * SHA-256 digests, so lengths never leak either), and the loop never exits early.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The shortest bridge key we accept: a shorter one is refused at start. */
export const MIN_BRIDGE_KEY_LENGTH = 32;

export interface BridgeKeyring {
  /** The non-secret handle of the matching key, or null. */
  match(presented: string): string | null;
  readonly size: number;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** A short, non-secret handle of a bridge key for audit rows and logs. */
export function bridgeKeyId(key: string): string {
  return `bk_${sha256(`agentpack-bridge-key-id\n${key}`).subarray(0, 6).toString('hex')}`;
}

/**
 * Parses `AGENTPACK_BRIDGE_KEYS` (comma-separated). Throws with a message naming the problem,
 * never the key, when the list is empty or a key is too short or has spaces inside.
 */
export function parseBridgeKeys(raw: string | undefined): string[] {
  const keys = (raw ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  if (keys.length === 0)
    throw new Error('AGENTPACK_BRIDGE_KEYS is empty: set at least one bridge key');
  keys.forEach((key, i) => {
    if (key.length < MIN_BRIDGE_KEY_LENGTH) {
      throw new Error(
        `AGENTPACK_BRIDGE_KEYS: key #${i + 1} is shorter than ${MIN_BRIDGE_KEY_LENGTH} characters`,
      );
    }
    if (!/^[\x21-\x7e]+$/.test(key)) {
      throw new Error(
        `AGENTPACK_BRIDGE_KEYS: key #${i + 1} has characters outside printable ASCII`,
      );
    }
  });
  return keys;
}

/** A keyring over the given keys (already validated by {@link parseBridgeKeys}). */
export function bridgeKeyring(keys: readonly string[]): BridgeKeyring {
  const entries = keys.map((key) => ({ digest: sha256(key), id: bridgeKeyId(key) }));
  return {
    size: entries.length,
    match(presented: string): string | null {
      const digest = sha256(presented);
      let found: string | null = null;
      for (const entry of entries) {
        // No early exit: every configured key is compared on every call.
        if (timingSafeEqual(digest, entry.digest) && found === null) found = entry.id;
      }
      return found;
    },
  };
}
