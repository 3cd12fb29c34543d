/**
 * Sealed boxes: libsodium's `crypto_box_seal`, byte for byte, so that any libsodium client
 * (PyNaCl, libsodium-wrappers, sodium_compat, ...) opens what the service seals to a device's
 * pinned X25519 key, and we open theirs. The construction:
 *
 *   (epk, esk) = a fresh X25519 key pair
 *   nonce      = BLAKE2b-192(epk ‖ recipient_pk)      (a real 24-byte BLAKE2b, not a truncation)
 *   k          = HSalsa20(X25519(esk, recipient_pk), 0¹⁶)   (crypto_box_beforenm)
 *   sealed     = epk ‖ XSalsa20-Poly1305(k, nonce, message) (crypto_box_afternm)
 *
 * That is crypto_box(message, nonce, recipient_pk, esk) exactly; we only split it in two so
 * that the X25519 step runs in node:crypto (OpenSSL), about 20 times faster than tweetnacl's
 * scalar multiplication, while tweetnacl does HSalsa20 and the XSalsa20-Poly1305 box. As
 * libsodium does, keys of small order are refused on both sides (the shared secret would be
 * all zeros, known to anyone). The ephemeral secret never enters the JavaScript heap: it lives
 * in an OpenSSL key that is freed (and cleared) with its KeyObject; the derived secrets are
 * zeroed as soon as they are used.
 */
import { blake2b } from '@noble/hashes/blake2.js';
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import nacl from 'tweetnacl';
import { encodeRawKey, isSmallOrderX25519, RAW_KEY_BYTES } from './curve-keys.js';

/** What sealing adds to a message: the ephemeral public key (32) and the Poly1305 tag (16). */
export const SEAL_OVERHEAD = RAW_KEY_BYTES + nacl.box.overheadLength;

const NONCE_BYTES = nacl.box.nonceLength; // 24

/** tweetnacl's HSalsa20 core, which its typings do not declare. */
interface NaclLowLevel {
  crypto_core_hsalsa20(
    out: Uint8Array,
    input: Uint8Array,
    key: Uint8Array,
    constant: Uint8Array,
  ): number;
}
const lowlevel = (nacl as unknown as { lowlevel?: Partial<NaclLowLevel> }).lowlevel;
if (typeof lowlevel?.crypto_core_hsalsa20 !== 'function') {
  throw new Error('tweetnacl has no lowlevel.crypto_core_hsalsa20: unsupported tweetnacl version');
}
const hsalsa20 = lowlevel.crypto_core_hsalsa20.bind(lowlevel);

/** HSalsa20's constant, "expand 32-byte k" (the `sigma` of NaCl). */
const SIGMA = new TextEncoder().encode('expand 32-byte k');
const ZERO_16 = new Uint8Array(16);

/**
 * The nonce of a sealed box: BLAKE2b with a 24-byte output over epk ‖ recipient_pk, as
 * libsodium's `crypto_box_seal_nonce` (`crypto_generichash(nonce, 24, epk ‖ pk)`). Exported for
 * the known-answer test.
 */
export function sealNonce(
  ephemeralPublicKey: Uint8Array,
  recipientPublicKey: Uint8Array,
): Uint8Array {
  const input = new Uint8Array(2 * RAW_KEY_BYTES);
  input.set(ephemeralPublicKey, 0);
  input.set(recipientPublicKey, RAW_KEY_BYTES);
  return blake2b(input, { dkLen: NONCE_BYTES });
}

/**
 * Seals `message` to an X25519 public key (libsodium `crypto_box_seal`): only the holder of the
 * matching private key can open it, and the sender stays anonymous. The output is
 * `SEAL_OVERHEAD` (48) bytes longer than the message. Throws a TypeError for a key that is not
 * 32 bytes or is of small order (libsodium refuses those too).
 *
 * @example
 * const sealed = sealTo(device.sealingPublicKey, Buffer.from(value, 'utf8'));
 */
export function sealTo(recipientPublicKey: Uint8Array, message: Uint8Array): Uint8Array {
  if (recipientPublicKey.length !== RAW_KEY_BYTES) {
    throw new TypeError(`a sealing key is ${RAW_KEY_BYTES} bytes`);
  }
  if (isSmallOrderX25519(recipientPublicKey)) {
    throw new TypeError('refusing to seal to a small-order key: anyone could open the box');
  }
  const ephemeral = generateKeyPairSync('x25519');
  const jwk = ephemeral.publicKey.export({ format: 'jwk' });
  const epk = new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
  const recipient = x25519PublicKeyObject(recipientPublicKey);
  const k = boxKey(ephemeral.privateKey, recipient);
  try {
    const box = nacl.box.after(message, sealNonce(epk, recipientPublicKey), k);
    const sealed = new Uint8Array(RAW_KEY_BYTES + box.length);
    sealed.set(epk, 0);
    sealed.set(box, RAW_KEY_BYTES);
    return sealed;
  } finally {
    k.fill(0);
  }
}

/**
 * Opens a sealed box (libsodium `crypto_box_seal_open`) with the recipient's X25519 key pair
 * (raw 32-byte keys). Returns the message, or null when the box is too short, was sealed to
 * another key, was altered in any byte, or carries a small-order ephemeral key. Throws a
 * TypeError only for keys of the wrong length.
 */
export function openSealed(
  sealed: Uint8Array,
  recipientPublicKey: Uint8Array,
  recipientSecretKey: Uint8Array,
): Uint8Array | null {
  if (recipientPublicKey.length !== RAW_KEY_BYTES || recipientSecretKey.length !== RAW_KEY_BYTES) {
    throw new TypeError(`sealing keys are ${RAW_KEY_BYTES} bytes`);
  }
  if (sealed.length < SEAL_OVERHEAD) return null;
  const epk = sealed.subarray(0, RAW_KEY_BYTES);
  if (isSmallOrderX25519(epk)) return null;
  let k: Uint8Array;
  try {
    k = boxKey(
      recipientPrivateKey(recipientSecretKey, recipientPublicKey),
      x25519PublicKeyObject(epk),
    );
  } catch {
    return null; // OpenSSL refuses an all-zero shared secret
  }
  try {
    return nacl.box.open.after(
      sealed.subarray(RAW_KEY_BYTES),
      sealNonce(epk, recipientPublicKey),
      k,
    );
  } finally {
    k.fill(0);
  }
}

/** crypto_box_beforenm: HSalsa20 of the X25519 shared secret. The shared secret is zeroed. */
function boxKey(privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  const shared = diffieHellman({ privateKey, publicKey });
  const k = new Uint8Array(RAW_KEY_BYTES);
  try {
    hsalsa20(k, ZERO_16, shared, SIGMA);
  } finally {
    shared.fill(0);
  }
  return k;
}

/**
 * The recipient's private KeyObject, imported from JWK: about ten times faster than PKCS#8 DER
 * in Node 20's OpenSSL 3. Node derives the key from `d` alone; `x` is required by the JWK form.
 */
function recipientPrivateKey(secretKey: Uint8Array, publicKey: Uint8Array): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: encodeRawKey(secretKey), x: encodeRawKey(publicKey) },
    format: 'jwk',
  });
}

function x25519PublicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: encodeRawKey(raw) },
    format: 'jwk',
  });
}
