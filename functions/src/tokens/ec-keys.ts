/**
 * ES256 keys as JWKs: the RFC 7638 thumbprint that names them (`kid`), the public JWK that is
 * published, and the conversion of a DER ECDSA signature (what Cloud KMS answers) to the raw
 * `r ‖ s` a JWS carries (RFC 7518 §3.4).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { EcPublicJwk } from '../ports/token-signer.js';

/** The RFC 7638 thumbprint of a P-256 public key: base64url(SHA-256) of its required members. */
export function ecThumbprint(x: string, y: string): string {
  const canonical = JSON.stringify({ crv: 'P-256', kty: 'EC', x, y });
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

/**
 * The published JWK of a P-256 public key (a KeyObject, or a PEM as Cloud KMS answers
 * `GetPublicKey`). Throws when the key is not an EC P-256 public key.
 */
export function ecPublicJwk(key: KeyObject | string): EcPublicJwk {
  const object = typeof key === 'string' ? createPublicKey(key) : key;
  const publicKey = object.type === 'private' ? createPublicKey(object) : object;
  const details = publicKey.asymmetricKeyDetails;
  if (publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
    throw new Error('the signing key is not an EC P-256 key');
  }
  const jwk = publicKey.export({ format: 'jwk' });
  const x = jwk.x!;
  const y = jwk.y!;
  return { kty: 'EC', crv: 'P-256', x, y, kid: ecThumbprint(x, y), alg: 'ES256', use: 'sig' };
}

/**
 * Converts a DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs) of a P-256 signature to the
 * 64-byte `r ‖ s` of a JWS. Throws on anything that is not exactly that structure (trailing
 * bytes, long-form lengths, integers wider than 32 bytes, negative or non-minimal integers).
 */
export function derToJoseSignature(der: Uint8Array): Buffer {
  const bytes = Buffer.from(der);
  const fail = (why: string): never => {
    throw new Error(`the ECDSA signature is not valid DER: ${why}`);
  };
  if (bytes.length < 8 || bytes[0] !== 0x30) fail('not a SEQUENCE');
  if (bytes[1]! & 0x80) fail('long-form length');
  if (bytes[1] !== bytes.length - 2) fail('wrong SEQUENCE length');
  let at = 2;
  const integer = (): Buffer => {
    if (bytes[at] !== 0x02) fail('not an INTEGER');
    const length = bytes[at + 1]!;
    if (length === 0 || length > 33 || at + 2 + length > bytes.length) fail('bad INTEGER length');
    let value = bytes.subarray(at + 2, at + 2 + length);
    if (value[0]! & 0x80) fail('negative INTEGER');
    if (value.length > 1 && value[0] === 0 && !(value[1]! & 0x80)) fail('non-minimal INTEGER');
    if (value[0] === 0 && value.length > 1) value = value.subarray(1);
    if (value.length > 32) fail('INTEGER wider than 32 bytes');
    at += 2 + length;
    return Buffer.concat([Buffer.alloc(32 - value.length), value]);
  };
  const r = integer();
  const s = integer();
  if (at !== bytes.length) fail('trailing bytes');
  return Buffer.concat([r, s]);
}
