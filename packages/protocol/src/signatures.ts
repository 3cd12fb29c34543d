/**
 * Ed25519 over a UTF-8 text, the primitive under every signed string of the protocol (signed
 * requests, attestations). Verification never throws.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { decodeBase64Url } from './base64url.js';
import { SIGNATURE_BYTES } from './curve-keys.js';
import { ed25519PrivateKeyObject } from './device-identity.js';

/** Signs `text` with an Ed25519 seed or private KeyObject; the signature as base64url. */
export function signText(text: string, key: Uint8Array | KeyObject): string {
  const privateKey = key instanceof Uint8Array ? ed25519PrivateKeyObject(key) : key;
  return sign(null, Buffer.from(text, 'utf8'), privateKey).toString('base64url');
}

/** True when `signature` (canonical base64url of 64 bytes) signs `text` by `publicKey`. */
export function verifyText(publicKey: KeyObject, text: string, signature: string): boolean {
  const bytes = decodeBase64Url(signature, SIGNATURE_BYTES, SIGNATURE_BYTES);
  if (bytes === null) return false;
  try {
    return verify(null, Buffer.from(text, 'utf8'), publicKey, bytes);
  } catch {
    return false; // a key of another type, or not a public key
  }
}
