/**
 * Signed requests (proof of possession): an enrolled device signs
 * `agentpack-request-v1\n<METHOD>\n<path>\n<timestamp>\n<nonce>\n<base64url(SHA-256(body))>`
 * with its pinned Ed25519 key. A timestamp more than 60 s off, a nonce seen before within the
 * window, or a bad signature is refused. Nonces are kept in the store (the document id a digest of
 * key id and nonce, an expiry field with a Firestore TTL policy), so the window holds across instances.
 */
import { createHash, type KeyObject } from 'node:crypto';
import {
  decodeRawKey,
  ed25519PublicKeyObject,
  SIGNATURE_WINDOW_SECONDS,
  verifyRequestSignature,
} from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { CoreDeps } from './deps.js';

/** Why a signed request was refused, for the structured log. */
export type SignatureRefusal =
  | 'malformed_signature_headers'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'replayed_nonce'
  | 'not_enrolled';

/** The signature headers of a request, or null when it carries none of them. */
export interface SignatureParts {
  timestamp: string;
  nonce: string;
  signature: string;
}

const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,128}$/; // at least 16 random bytes
const TIMESTAMP_PATTERN = /^\d{1,12}$/;

/**
 * Pinned keys never change, so the KeyObject of each one is built once and kept (bounded:
 * the oldest is dropped past 10,000 keys).
 */
const keyObjects = new Map<string, KeyObject>();
function keyObjectFor(publicKey: string): KeyObject | null {
  let key = keyObjects.get(publicKey);
  if (key === undefined) {
    const raw = decodeRawKey(publicKey);
    if (raw === null) return null;
    key = ed25519PublicKeyObject(raw);
    if (keyObjects.size >= 10_000) keyObjects.delete(keyObjects.keys().next().value!);
    keyObjects.set(publicKey, key);
  }
  return key;
}

/**
 * Verifies a signed request for the device key `keyId` with pinned signing key
 * `signingPublicKey`, then records its nonce. Returns null when accepted.
 */
export async function checkSignedRequest(
  deps: CoreDeps,
  device: { key_id: string; signing_public_key?: string | null | undefined },
  request: { method: string; path: string; body: Buffer },
  parts: SignatureParts,
): Promise<SignatureRefusal | null> {
  if (device.signing_public_key === null || device.signing_public_key === undefined)
    return 'not_enrolled';
  if (!TIMESTAMP_PATTERN.test(parts.timestamp) || !NONCE_PATTERN.test(parts.nonce)) {
    return 'malformed_signature_headers';
  }
  const nowMs = deps.clock.now();
  const timestamp = Number(parts.timestamp);
  if (Math.abs(timestamp * 1000 - nowMs) > SIGNATURE_WINDOW_SECONDS * 1000)
    return 'stale_timestamp';
  const key = keyObjectFor(device.signing_public_key);
  if (key === null) return 'bad_signature';
  const valid = verifyRequestSignature(
    key,
    {
      method: request.method,
      path: request.path,
      timestamp: parts.timestamp,
      nonce: parts.nonce,
      body: request.body,
    },
    parts.signature,
  );
  if (!valid) return 'bad_signature';
  // Only a correctly signed request may spend a nonce, so nobody can burn a device's nonces.
  const id = createHash('sha256').update(`${device.key_id}\n${parts.nonce}`).digest('base64url');
  const fresh = await deps.store.transact(async (tx) => {
    const seen = await tx.get('request_nonces', id);
    if (seen !== null && Date.parse(seen.expires_at) > nowMs) return false;
    // Kept for the whole window on both sides of the timestamp it came with.
    tx.set('request_nonces', id, {
      key_id: device.key_id,
      expires_at: rfc3339(timestamp * 1000 + 2 * SIGNATURE_WINDOW_SECONDS * 1000),
    });
    return true;
  });
  return fresh ? null : 'replayed_nonce';
}
