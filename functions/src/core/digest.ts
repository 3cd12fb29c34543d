/**
 * The one digest of a presented secret. Device keys and enrollment codes are stored, and looked
 * up, only under this digest: HMAC-SHA-256 under the digest key from configuration
 * (`AGENTPACK_DIGEST_KEY`: Secret Manager on Cloud Functions, a 0600 file in the data dir
 * locally), never in the store. So a row written into the store by someone who lacks that key
 * (a leaked service account, a compromised backup restored with edits) authenticates nothing:
 * they cannot compute the id a made-up key would be looked up under.
 *
 * The HMAC is taken over the plain SHA-256 digest rows were stored under before keyed digests
 * ({@link legacyDigest}), so the migration can move an old row to its keyed id without ever
 * knowing the secret ({@link rekeyLegacyDigest}). The service itself never looks up a plain
 * digest: an unmigrated row is refused like an unknown key.
 */
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';

/** The kinds of presented secret that are stored as digests. */
export type SecretKind = 'device_key' | 'enrollment_code';

/** The keyed digest of a presented secret of a kind: a document id (43 base64url characters). */
export type Digester = (kind: SecretKind, secret: string) => string;

/** The plain digest of the days before keyed digests (the migration reads rows by it). */
export function legacyDigest(kind: SecretKind, secret: string): string {
  const input = kind === 'device_key' ? secret : `agentpack-enrollment\n${secret}`;
  return createHash('sha256').update(input).digest('base64url');
}

function keyed(key: KeyObject, kind: SecretKind, legacy: string): string {
  return createHmac('sha256', key)
    .update(`agentpack-digest-v1\n${kind}\n${legacy}`)
    .digest('base64url');
}

/** A digester over a 32-byte digest key. */
export function createDigester(digestKey: Uint8Array): Digester {
  if (digestKey.length !== 32) throw new Error('the digest key must be 32 bytes');
  const key = createSecretKey(Buffer.from(digestKey));
  return (kind, secret) => keyed(key, kind, legacyDigest(kind, secret));
}

/** The keyed id of a row stored under a plain digest (migration only). */
export function rekeyLegacyDigest(digestKey: Uint8Array, kind: SecretKind, legacy: string): string {
  return keyed(createSecretKey(Buffer.from(digestKey)), kind, legacy);
}
