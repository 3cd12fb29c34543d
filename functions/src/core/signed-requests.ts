/**
 * Signed requests (proof of possession): an enrolled device (or a run) signs
 * `agentpack-request-v1\n<METHOD>\n<path>\n<timestamp>\n<nonce>\n<base64url(SHA-256(body))>`
 * with its pinned Ed25519 key — and a request that carries `x-agentpack-delegation` signs the
 * v2 string, which ends with the delegation id, so a delegation added on the path breaks the
 * signature (the string is the protocol package's). This is the one check every signed
 * credential goes through. A timestamp more than 60 s off, a nonce seen before within the
 * window, or a bad signature is refused. Nonces are kept in the store (the document id a digest of
 * key id and nonce, an expiry field with a Firestore TTL policy), so the window holds across instances.
 */
import { createHash, type KeyObject } from 'node:crypto';
import {
  CREDENTIAL_HEADERS,
  decodeRawKey,
  ed25519PublicKeyObject,
  isWellFormedNonce,
  SIGNATURE_WINDOW_SECONDS,
  TIMESTAMP_PATTERN,
  verifyRequestSignature,
} from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { HttpRequest } from '../ports/http.js';
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
 * Verifies a signed request for the device key (or run) `key_id` with pinned signing key
 * `signing_public_key`, then records its nonce. Returns null when accepted. The delegation
 * header, when the request carries one, is read here from the request itself, so no caller can
 * leave it out of the signed string.
 */
export async function checkSignedRequest(
  deps: CoreDeps,
  device: { key_id: string; signing_public_key?: string | null | undefined },
  request: Pick<HttpRequest, 'method' | 'path' | 'body' | 'headers'>,
  parts: SignatureParts,
): Promise<SignatureRefusal | null> {
  if (device.signing_public_key === null || device.signing_public_key === undefined)
    return 'not_enrolled';
  if (!TIMESTAMP_PATTERN.test(parts.timestamp) || !isWellFormedNonce(parts.nonce)) {
    return 'malformed_signature_headers';
  }
  const delegations = request.headers[CREDENTIAL_HEADERS.delegation] ?? [];
  if (delegations.length > 1) return 'malformed_signature_headers';
  const delegation = delegations[0];
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
      delegation,
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
