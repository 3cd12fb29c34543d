/**
 * The key material of an enrolled device and what is signed with it: the encodings of its two
 * raw 32-byte public keys (an X25519 key that secrets are sealed to, an Ed25519 key that signs),
 * their validation, the device's fingerprint, key generation, and the two signed strings
 * (signed requests and attestations). Shared by the service (which verifies with KeyObjects
 * built once per pinned key), the CLI and the tests, so that all of them sign and check exactly
 * the same bytes. Everything runs on `node:crypto` (OpenSSL); see DESIGN.md "Crypto choices".
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { ed25519PublicKeyProblem } from '../tokens/pinned-keys.js';

/** The length of every raw key here: X25519 public and private keys, Ed25519 keys and seeds. */
export const RAW_KEY_BYTES = 32;

/** The length of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

/** The header names of a signed request (API.md "Signed requests"). */
export const SIGNED_REQUEST_HEADERS = {
  timestamp: 'x-agentpack-timestamp',
  nonce: 'x-agentpack-nonce',
  signature: 'x-agentpack-signature',
} as const;

/** The first line of the string a device signs for a request; a version, so it can change. */
export const REQUEST_SIGNING_CONTEXT = 'agentpack-request-v1';

/** The first line of the string a device signs for an attestation. */
export const ATTESTATION_CONTEXT = 'agentpack-attestation-v1';

/** Random bytes in a nonce made by {@link signRequest}: 18 bytes are 24 base64url characters. */
const NONCE_BYTES = 18;
/** A nonce must carry at least 16 random bytes (API.md); more than 96 is a mistake or abuse. */
const MIN_NONCE_BYTES = 16;
const MAX_NONCE_BYTES = 96;

// DER prefixes (RFC 8410) that wrap a raw 32-byte key: importing from DER needs no public part,
// where a private JWK must carry `x` as well as `d`.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * Encodes raw key bytes (or a signature) as unpadded base64url, the wire form of every key in
 * the enrolled-device API.
 */
export function encodeRawKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Decodes a raw 32-byte key from canonical unpadded base64url, or returns null. Node's decoder
 * is lenient (padding, the `+/` alphabet, stray characters, non-zero trailing bits), so the
 * bytes are re-encoded and compared: exactly one spelling of each key passes, so a pinned key
 * and its fingerprint have one form.
 */
export function decodeRawKey(text: string): Uint8Array | null {
  return decodeCanonical(text, RAW_KEY_BYTES, RAW_KEY_BYTES);
}

/** Canonical unpadded base64url of `min`..`max` bytes, or null. Never throws. */
function decodeCanonical(text: unknown, min: number, max: number): Uint8Array | null {
  if (typeof text !== 'string' || text.length > Math.ceil((max * 4) / 3)) return null;
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length < min || bytes.length > max || bytes.toString('base64url') !== text) {
    return null;
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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

/** The parts of a request that its signature covers. */
export interface RequestSigningParts {
  /** The HTTP method, upper case (`POST`). */
  method: string;
  /** The route path as the API names it (`/secrets/get`), starting with `/`. */
  path: string;
  /** Unix seconds, as sent in `x-agentpack-timestamp`. */
  timestamp: string;
  /** As sent in `x-agentpack-nonce`: canonical base64url of 16 to 96 bytes. */
  nonce: string;
  /** The raw request body, exactly the bytes sent. */
  body: Uint8Array;
}

const METHOD_PATTERN = /^[A-Z]{1,16}$/;
/** Printable ASCII without spaces: a path cannot carry a line break into the signed string. */
const PATH_PATTERN = /^\/[\x21-\x7e]{0,2047}$/;
const TIMESTAMP_PATTERN = /^[0-9]{1,12}$/;

/** Why the parts cannot be signed, or null. Policy: every field is one line, so the string has exactly one reading. */
function requestPartsProblem(parts: RequestSigningParts): string | null {
  if (typeof parts.method !== 'string' || !METHOD_PATTERN.test(parts.method)) {
    return 'method must be an upper-case HTTP method';
  }
  if (typeof parts.path !== 'string' || !PATH_PATTERN.test(parts.path)) {
    return 'path must start with / and be printable ASCII without spaces';
  }
  if (typeof parts.timestamp !== 'string' || !TIMESTAMP_PATTERN.test(parts.timestamp)) {
    return 'timestamp must be unix seconds';
  }
  if (decodeCanonical(parts.nonce, MIN_NONCE_BYTES, MAX_NONCE_BYTES) === null) {
    return `nonce must be canonical base64url of ${MIN_NONCE_BYTES} to ${MAX_NONCE_BYTES} bytes`;
  }
  if (!(parts.body instanceof Uint8Array)) return 'body must be bytes';
  return null;
}

/**
 * The string a device signs for a request:
 * `agentpack-request-v1\n<METHOD>\n<path>\n<timestamp>\n<nonce>\n<base64url(SHA-256(body))>`.
 * Throws a TypeError when a part is malformed (a field with a line break would make two
 * requests sign alike).
 */
export function requestSigningString(parts: RequestSigningParts): string {
  const problem = requestPartsProblem(parts);
  if (problem !== null) throw new TypeError(`cannot sign this request: ${problem}`);
  const bodyHash = createHash('sha256').update(parts.body).digest('base64url');
  return [
    REQUEST_SIGNING_CONTEXT,
    parts.method,
    parts.path,
    parts.timestamp,
    parts.nonce,
    bodyHash,
  ].join('\n');
}

/** The three headers that make a request signed. */
export interface SignedRequestHeaders {
  'x-agentpack-timestamp': string;
  'x-agentpack-nonce': string;
  'x-agentpack-signature': string;
}

/** What {@link signRequest} needs. */
export interface SignRequestInput {
  method: string;
  path: string;
  /** The exact body bytes to send (a string is taken as UTF-8). */
  body: Uint8Array | string;
  /** The device's 32-byte Ed25519 seed, or a KeyObject from {@link ed25519PrivateKeyObject}. */
  signingSeed: Uint8Array | KeyObject;
  /** Milliseconds since the Unix epoch (the timestamp is its whole seconds). */
  nowMs: number;
  /** A nonce to use instead of 18 fresh random bytes (tests; never reuse one). */
  nonce?: string;
}

/**
 * Signs a request as an enrolled device and returns the headers to add: the timestamp (unix
 * seconds), a fresh nonce (18 random bytes, 24 base64url characters) and the Ed25519
 * signature over {@link requestSigningString}. The method is upper-cased first.
 *
 * @example
 * const body = JSON.stringify({ name: 'openai_key' });
 * const headers = signRequest({ method: 'POST', path: '/secrets/get', body, signingSeed, nowMs: Date.now() });
 */
export function signRequest(input: SignRequestInput): SignedRequestHeaders {
  if (!Number.isFinite(input.nowMs) || input.nowMs < 0) throw new TypeError('nowMs must be a time');
  const timestamp = String(Math.floor(input.nowMs / 1000));
  const nonce = input.nonce ?? randomBytes(NONCE_BYTES).toString('base64url');
  const body = typeof input.body === 'string' ? Buffer.from(input.body, 'utf8') : input.body;
  const text = requestSigningString({
    method: input.method.toUpperCase(),
    path: input.path,
    timestamp,
    nonce,
    body,
  });
  return {
    'x-agentpack-timestamp': timestamp,
    'x-agentpack-nonce': nonce,
    'x-agentpack-signature': signText(text, input.signingSeed),
  };
}

/**
 * True when `signature` (base64url) is the Ed25519 signature of {@link requestSigningString}
 * of `parts` by `publicKey`. Never throws: malformed parts, a signature that is not canonical
 * base64url of exactly 64 bytes, or a key of another type all give false.
 */
export function verifyRequestSignature(
  publicKey: KeyObject,
  parts: RequestSigningParts,
  signature: string,
): boolean {
  if (requestPartsProblem(parts) !== null) return false;
  return verifyText(publicKey, requestSigningString(parts), signature);
}

/** The fields of a job attestation (API.md `/attestations/verify`). */
export interface AttestationFields {
  job_id: string;
  input_sha256: string;
  output_sha256: string;
  /** The job's exit code: a safe integer. */
  rc: number;
}

/** Control characters, line breaks included: none may appear in a signed field. */
const CONTROL = /[\x00-\x1f\x7f]/;

function attestationProblem(fields: AttestationFields): string | null {
  for (const name of ['job_id', 'input_sha256', 'output_sha256'] as const) {
    const value: unknown = fields[name];
    if (typeof value !== 'string') return `${name} must be a string`;
    if (CONTROL.test(value)) return `${name} must not contain control characters`;
  }
  if (!Number.isSafeInteger(fields.rc)) return 'rc must be an integer';
  return null;
}

/**
 * The string a device signs to attest a job:
 * `agentpack-attestation-v1\n<job_id>\n<input_sha256>\n<output_sha256>\n<rc>`. Throws a
 * TypeError when a field holds a control character (a line break would let one signature
 * stand for two different attestations) or `rc` is not a safe integer.
 */
export function attestationString(fields: AttestationFields): string {
  const problem = attestationProblem(fields);
  if (problem !== null) throw new TypeError(`cannot sign this attestation: ${problem}`);
  return [
    ATTESTATION_CONTEXT,
    fields.job_id,
    fields.input_sha256,
    fields.output_sha256,
    String(fields.rc),
  ].join('\n');
}

/**
 * Signs an attestation with the device's Ed25519 seed (or private KeyObject) and returns the
 * signature as base64url, as `/attestations/verify` takes it.
 */
export function signAttestation(
  fields: AttestationFields,
  signingSeed: Uint8Array | KeyObject,
): string {
  return signText(attestationString(fields), signingSeed);
}

/**
 * True when `signature` (base64url) is a valid attestation signature of `fields` by
 * `publicKey`. Never throws: malformed fields or signature give false.
 */
export function verifyAttestationSignature(
  publicKey: KeyObject,
  fields: AttestationFields,
  signature: string,
): boolean {
  if (attestationProblem(fields) !== null) return false;
  return verifyText(publicKey, attestationString(fields), signature);
}

function signText(text: string, key: Uint8Array | KeyObject): string {
  const privateKey = key instanceof Uint8Array ? ed25519PrivateKeyObject(key) : key;
  return sign(null, Buffer.from(text, 'utf8'), privateKey).toString('base64url');
}

function verifyText(publicKey: KeyObject, text: string, signature: string): boolean {
  const bytes = decodeCanonical(signature, SIGNATURE_BYTES, SIGNATURE_BYTES);
  if (bytes === null) return false;
  try {
    return verify(null, Buffer.from(text, 'utf8'), publicKey, bytes);
  } catch {
    return false; // a key of another type, or not a public key
  }
}

function rawPublicOf(privateKey: KeyObject): Uint8Array {
  return b64(createPublicKey(privateKey).export({ format: 'jwk' }).x);
}

function b64(text: string | undefined): Uint8Array {
  if (text === undefined) throw new Error('a generated key has no raw part');
  return new Uint8Array(Buffer.from(text, 'base64url'));
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
