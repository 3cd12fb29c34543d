/**
 * The checks of the two raw 32-byte public keys the protocol carries: X25519 keys that secrets
 * are sealed to, and Ed25519 keys that verify signatures (capability-token keys, device and run
 * signing keys). Pure: BigInt arithmetic for the encodings, no I/O.
 */
import { decodeBase64Url, encodeBase64Url } from './base64url.js';

/** The length of every raw key here: X25519 public and private keys, Ed25519 keys and seeds. */
export const RAW_KEY_BYTES = 32;

/** The length of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

/** Encodes raw key bytes (or a signature) as unpadded base64url, the wire form of every key. */
export const encodeRawKey = encodeBase64Url;

/**
 * Decodes a raw 32-byte key from canonical unpadded base64url, or returns null: exactly one
 * spelling of each key passes, so a pinned key and its fingerprint have one form.
 */
export function decodeRawKey(text: string): Uint8Array | null {
  const bytes = decodeBase64Url(text, RAW_KEY_BYTES, RAW_KEY_BYTES);
  return bytes === null ? null : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const P_MINUS_19_LOW_BYTE = 0xed; // 2^255 - 19 ends (little-endian) in ed ff .. ff 7f

/**
 * Encodings of the Ed25519 points of small order (the identity, order 2, 4 and 8, with both
 * sign bits), as libsodium blocks them. Policy: a pinned key of small order is refused because
 * with it a signature can be forged without any private key (S·B = R + k·A holds for many R, S
 * whatever the message).
 */
const SMALL_ORDER_KEYS = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
]);

/**
 * Why the 32 bytes of an Ed25519 public key are unusable, or null when they are fine: a
 * non-canonical encoding (y ≥ 2^255 - 19, so the same point has two spellings) or a point of
 * small order (see {@link SMALL_ORDER_KEYS}).
 */
export function ed25519PublicKeyProblem(bytes: Uint8Array): string | null {
  if (bytes.length !== 32) return 'is not 32 bytes';
  if (SMALL_ORDER_KEYS.has(hex(bytes))) return 'is a small-order point';
  let high = (bytes[31]! & 0x7f) === 0x7f;
  for (let i = 30; high && i >= 1; i--) high = bytes[i] === 0xff;
  if (high && bytes[0]! >= P_MINUS_19_LOW_BYTE) return 'is not canonically encoded';
  return null;
}

/**
 * The encodings of the X25519 public keys of small order, exactly libsodium's blocklist
 * (`has_small_order` in crypto_scalarmult/curve25519): 0, 1, the two points of order 8, p - 1,
 * and the non-canonical p and p + 1 (which are 0 and 1 again). libsodium ignores the top bit,
 * so each one also appears with it set: 14 encodings. 0 is the all-zero key.
 */
const X25519_SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

/** The 14 blocked encodings: {@link X25519_SMALL_ORDER} with the top bit clear and set. */
export const X25519_SMALL_ORDER_ENCODINGS: readonly string[] = X25519_SMALL_ORDER.flatMap((hex) => [
  hex,
  `${hex.slice(0, 62)}${(parseInt(hex.slice(62), 16) | 0x80).toString(16)}`,
]);
const X25519_BLOCKED = new Set(X25519_SMALL_ORDER_ENCODINGS);

/**
 * True when an X25519 public key is one of the small-order encodings libsodium refuses (see
 * {@link X25519_SMALL_ORDER}). With such a key the shared secret is all zeros whatever the
 * other side's secret, so a box "sealed" to it is readable by anyone.
 */
export function isSmallOrderX25519(bytes: Uint8Array): boolean {
  return bytes.length === RAW_KEY_BYTES && X25519_BLOCKED.has(hex(bytes));
}

/**
 * Why 32 bytes are unusable as a device's X25519 sealing key, or null when they are fine.
 * Refused: the wrong length; a point of small order (libsodium's blocklist, all-zero included:
 * a secret sealed to it could be opened by anyone); a non-canonical encoding (the top bit set,
 * or a value ≥ 2^255 - 19) — no X25519 implementation produces one, and refusing it keeps one
 * spelling per key, so one fingerprint per device.
 */
export function x25519PublicKeyProblem(bytes: Uint8Array): string | null {
  if (bytes.length !== RAW_KEY_BYTES) return `is not ${RAW_KEY_BYTES} bytes`;
  if (isSmallOrderX25519(bytes)) return 'is a small-order point';
  if ((bytes[31]! & 0x80) !== 0 || littleEndian(bytes) >= P) return 'is not canonically encoded';
  return null;
}

/**
 * Why 32 bytes are unusable as a device's Ed25519 signing key, or null when they are fine:
 * the wrong length, a non-canonical encoding or a point of small order (the same policy as the
 * pinned token keys, {@link ed25519PublicKeyProblem}: with a small-order key signatures can be
 * forged), or bytes that are not a point of the curve at all (no signature could ever verify,
 * so the enrollment would be useless).
 */
export function signingKeyProblem(bytes: Uint8Array): string | null {
  if (bytes.length !== RAW_KEY_BYTES) return `is not ${RAW_KEY_BYTES} bytes`;
  const problem = ed25519PublicKeyProblem(bytes);
  if (problem !== null) return problem;
  if (!isEd25519Point(bytes)) return 'is not a point on the curve';
  return null;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

// Curve25519 / edwards25519 arithmetic, only for validating encodings (enrollment, not the
// request path): BigInt is plenty fast for two modular exponentiations.
const P = 2n ** 255n - 19n;

const mod = (a: bigint) => {
  const r = a % P;
  return r >= 0n ? r : r + P;
};

function powMod(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

/** The Edwards curve constant d = -121665/121666 mod p. */
const D = mod(-121665n * powMod(121666n, P - 2n));

function littleEndian(bytes: Uint8Array, topBitMask = 0xff): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) {
    n = (n << 8n) | BigInt(i === bytes.length - 1 ? bytes[i]! & topBitMask : bytes[i]!);
  }
  return n;
}

/**
 * True when the 32 bytes (with y < p, checked before) decode to a point of edwards25519
 * (RFC 8032 §5.1.3): x² = (y² - 1) / (d·y² + 1) must have a root (Euler's criterion), and
 * x = 0 must come with a clear sign bit.
 */
function isEd25519Point(bytes: Uint8Array): boolean {
  const y = littleEndian(bytes, 0x7f);
  const y2 = (y * y) % P;
  const x2 = mod((y2 - 1n) * powMod(D * y2 + 1n, P - 2n));
  if (x2 === 0n) return (bytes[31]! & 0x80) === 0;
  return powMod(x2, (P - 1n) / 2n) === 1n;
}
