/**
 * An enrolled device's identity: its two key pairs (an X25519 key that secrets are sealed to,
 * an Ed25519 key that signs), generated here, imported into node:crypto KeyObjects, and named
 * by one fingerprint read out of band at enrollment. Run keys are Ed25519 keys made the same
 * way. Everything runs on `node:crypto` (OpenSSL).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { encodeRawKey, RAW_KEY_BYTES } from './curve-keys.js';

// DER prefixes (RFC 8410) that wrap a raw 32-byte key: importing from DER needs no public part,
// where a private JWK must carry `x` as well as `d`.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * A device's fingerprint: `SHA256:` + unpadded base64url of SHA-256(sealing ‖ signing public
 * key). Read out of band at enrollment; it names both pinned keys at once.
 *
 * @example
 * deviceFingerprint(keys.sealing.publicKey, keys.signing.publicKey); // 'SHA256:3q2-...'
 */
export function deviceFingerprint(
  sealingPublicKey: Uint8Array,
  signingPublicKey: Uint8Array,
): string {
  if (sealingPublicKey.length !== RAW_KEY_BYTES || signingPublicKey.length !== RAW_KEY_BYTES) {
    throw new TypeError(`a fingerprint is taken over two ${RAW_KEY_BYTES}-byte public keys`);
  }
  const digest = createHash('sha256').update(sealingPublicKey).update(signingPublicKey).digest();
  return `SHA256:${digest.toString('base64url')}`;
}

/** A device's two key pairs as raw bytes; `signing.privateKey` is the 32-byte Ed25519 seed. */
export interface DeviceKeys {
  sealing: { publicKey: Uint8Array; privateKey: Uint8Array };
  signing: { publicKey: Uint8Array; privateKey: Uint8Array };
}

/**
 * Generates a device's X25519 sealing key pair and Ed25519 signing key pair with node:crypto,
 * as raw 32-byte arrays (the private Ed25519 key as its seed), read out through JWK export.
 */
export function generateDeviceKeys(): DeviceKeys {
  const sealing = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  const signing = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return {
    sealing: { publicKey: b64(sealing.x), privateKey: b64(sealing.d) },
    signing: { publicKey: b64(signing.x), privateKey: b64(signing.d) },
  };
}

/**
 * An Ed25519 public KeyObject from a raw 32-byte key (JWK import). Importing costs about as
 * much as a verify, so the service builds one per pinned key and keeps it. Throws a TypeError
 * on the wrong length; the key is assumed to have passed {@link signingKeyProblem}.
 */
export function ed25519PublicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== RAW_KEY_BYTES) throw new TypeError(`an Ed25519 key is ${RAW_KEY_BYTES} bytes`);
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: encodeRawKey(raw) },
    format: 'jwk',
  });
}

/**
 * An Ed25519 private KeyObject from its 32-byte seed (PKCS#8 DER import, so no public part is
 * needed). The import costs several signatures (about 0.5 ms on Node 20's OpenSSL 3): build it
 * once when signing many requests and pass it to {@link signRequest}.
 */
export function ed25519PrivateKeyObject(seed: Uint8Array): KeyObject {
  if (seed.length !== RAW_KEY_BYTES)
    throw new TypeError(`an Ed25519 seed is ${RAW_KEY_BYTES} bytes`);
  return createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
}

/**
 * An X25519 private KeyObject from its raw 32 bytes (PKCS#8 DER import), as used to open a
 * sealed box with node:crypto.
 */
export function x25519PrivateKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== RAW_KEY_BYTES) throw new TypeError(`an X25519 key is ${RAW_KEY_BYTES} bytes`);
  return createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, raw]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** The raw 32-byte public key of an Ed25519 seed (for checking a key file against its pair). */
export function signingPublicKeyOf(seed: Uint8Array): Uint8Array {
  return rawPublicOf(ed25519PrivateKeyObject(seed));
}

/** The raw 32-byte public key of an X25519 private key. */
export function sealingPublicKeyOf(privateKey: Uint8Array): Uint8Array {
  return rawPublicOf(x25519PrivateKeyObject(privateKey));
}

function rawPublicOf(privateKey: KeyObject): Uint8Array {
  return b64(createPublicKey(privateKey).export({ format: 'jwk' }).x);
}

function b64(text: string | undefined): Uint8Array {
  if (text === undefined) throw new Error('a generated key has no raw part');
  return new Uint8Array(Buffer.from(text, 'base64url'));
}
