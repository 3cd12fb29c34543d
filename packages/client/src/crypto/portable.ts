/**
 * The portable backend: pure JavaScript, no node:crypto and no Buffer, for runtimes where
 * node:crypto is absent. The signed string and the sealed box are the protocol's (its context
 * lines, header names and libsodium's small-order blocklist are imported from it); only the
 * primitives differ — @noble/curves for Ed25519, X25519 and P-256, @noble/hashes for SHA-256
 * and BLAKE2b, tweetnacl for the XSalsa20-Poly1305 box (as the protocol uses it).
 */
import {
  CREDENTIAL_VALUE_PATTERN,
  DELEGATED_REQUEST_SIGNING_CONTEXT,
  REQUEST_SIGNING_CONTEXT,
  SIGNED_REQUEST_HEADERS,
  X25519_SMALL_ORDER_ENCODINGS,
} from '@agentpack-identity/protocol';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { sha256 } from '@noble/hashes/sha2.js';
import nacl from 'tweetnacl';
import type { CryptoBackend, SignedHeaders, SignInput } from './backend.js';
import { randomBytes, toBase64Url, toHex, utf8 } from './bytes.js';

const METHOD_PATTERN = /^[A-Z]{1,16}$/;
const PATH_PATTERN = /^\/[\x21-\x7e]{0,2047}$/;
const SMALL_ORDER = new Set(X25519_SMALL_ORDER_ENCODINGS);
/** What sealing adds: the ephemeral public key (32) and the Poly1305 tag (16). */
const SEAL_OVERHEAD = 32 + nacl.box.overheadLength;

/**
 * The string a request's signature covers (the protocol's `requestSigningString`, which the
 * tests hold this equal to): v1, or v2 ending with the delegation id.
 */
export function signingString(parts: {
  method: string;
  path: string;
  timestamp: string;
  nonce: string;
  body: Uint8Array;
  delegation?: string | undefined;
}): string {
  // Every field is one line, so the string has exactly one reading.
  if (!METHOD_PATTERN.test(parts.method)) throw new TypeError('cannot sign: bad method');
  if (!PATH_PATTERN.test(parts.path)) throw new TypeError('cannot sign: bad path');
  if (parts.delegation !== undefined && !CREDENTIAL_VALUE_PATTERN.test(parts.delegation)) {
    throw new TypeError('cannot sign: bad delegation id');
  }
  const lines = [
    parts.method,
    parts.path,
    parts.timestamp,
    parts.nonce,
    toBase64Url(sha256(parts.body)),
  ];
  return parts.delegation === undefined
    ? [REQUEST_SIGNING_CONTEXT, ...lines].join('\n')
    : [DELEGATED_REQUEST_SIGNING_CONTEXT, ...lines, parts.delegation].join('\n');
}

function signRequest(input: SignInput): SignedHeaders {
  if (!Number.isFinite(input.nowMs) || input.nowMs < 0) throw new TypeError('nowMs must be a time');
  const timestamp = String(Math.floor(input.nowMs / 1000));
  const nonce = input.nonce ?? toBase64Url(randomBytes(18));
  const text = signingString({
    method: input.method.toUpperCase(),
    path: input.path,
    timestamp,
    nonce,
    body: input.body,
    delegation: input.delegation,
  });
  const headers: SignedHeaders = {
    [SIGNED_REQUEST_HEADERS.timestamp]: timestamp,
    [SIGNED_REQUEST_HEADERS.nonce]: nonce,
    [SIGNED_REQUEST_HEADERS.signature]: toBase64Url(ed25519.sign(utf8(text), input.seed)),
  };
  if (input.delegation !== undefined) headers['x-agentpack-delegation'] = input.delegation;
  return headers;
}

/** libsodium's crypto_box_seal_open: nonce = BLAKE2b-192(epk ‖ pk), then crypto_box_open. */
function openSealed(
  sealed: Uint8Array,
  publicKey: Uint8Array,
  secretKey: Uint8Array,
): Uint8Array | null {
  if (publicKey.length !== 32 || secretKey.length !== 32) {
    throw new TypeError('sealing keys are 32 bytes');
  }
  if (sealed.length < SEAL_OVERHEAD) return null;
  const epk = sealed.subarray(0, 32);
  // As libsodium: a small-order ephemeral key makes an all-zero shared secret, known to anyone.
  if (SMALL_ORDER.has(toHex(epk))) return null;
  const nonceInput = new Uint8Array(64);
  nonceInput.set(epk, 0);
  nonceInput.set(publicKey, 32);
  const nonce = blake2b(nonceInput, { dkLen: nacl.box.nonceLength });
  return nacl.box.open(sealed.subarray(32), nonce, epk, secretKey);
}

export const portableBackend: CryptoBackend = {
  name: 'portable',
  signRequest,
  openSealed,
  verifyEd25519(publicKey, message, signature) {
    try {
      // Strict RFC 8032 (as OpenSSL), not ZIP-215.
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
  verifyP256(point, message, signature) {
    if (point.x.length !== 32 || point.y.length !== 32 || signature.length !== 64) return false;
    const encoded = new Uint8Array(65);
    encoded[0] = 4;
    encoded.set(point.x, 1);
    encoded.set(point.y, 33);
    try {
      // High-S signatures are valid ES256 (OpenSSL and Cloud KMS make them).
      return p256.verify(signature, message, encoded, {
        prehash: true,
        lowS: false,
        format: 'compact',
      });
    } catch {
      return false;
    }
  },
  ed25519PublicKey: (seed) => ed25519.getPublicKey(seed),
  x25519PublicKey: (secretKey) => x25519.getPublicKey(secretKey),
};
