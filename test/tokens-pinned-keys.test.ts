/**
 * Pinned key loading (AGENTPACK_CAPABILITY_KEYS): only Ed25519 public keys with a kid; every
 * refusal names the key (kid or index) and never carries key material.
 */
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { ed25519PublicKeyProblem, generateSigningKey } from '@agentpack-identity/protocol';
import { loadPinnedKeys, publicJwks } from '../functions/src/tokens/pinned-keys.js';

ed.hashes.sha512 = (message: Uint8Array) =>
  new Uint8Array(createHash('sha512').update(message).digest());

const a = generateSigningKey('key-a');
const b = generateSigningKey('key-b');
const doc = (...keys: unknown[]) => JSON.stringify({ keys });
const x = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

describe('loadPinnedKeys', () => {
  it('loads Ed25519 public JWKs into KeyObjects by kid', () => {
    const keys = loadPinnedKeys(doc(a.publicJwk, b.publicJwk));
    expect([...keys.keys()]).toEqual(['key-a', 'key-b']);
    for (const key of keys.values()) {
      expect(key.type).toBe('public');
      expect(key.asymmetricKeyType).toBe('ed25519');
    }
  });

  it('accepts a bare JWK (no alg, use or key_ops) and key_ops with verify', () => {
    const { kty, crv, x: pub } = a.publicJwk;
    const keys = loadPinnedKeys(doc({ kty, crv, x: pub, kid: 'bare', key_ops: ['verify'] }));
    expect(keys.get('bare')?.export({ format: 'jwk' }).x).toBe(pub);
  });

  it('publishes exactly the public members, alg and use', () => {
    const keys = loadPinnedKeys(doc(a.publicJwk, b.publicJwk));
    expect(publicJwks(keys)).toEqual({ keys: [a.publicJwk, b.publicJwk] });
    expect(JSON.stringify(publicJwks(keys))).not.toContain('"d"');
  });

  const pub = a.publicJwk;
  const refusals: Array<[string, string, RegExp]> = [
    ['not JSON', '{"keys": [', /not valid JSON/],
    ['no keys array', '{"kty":"OKP"}', /"keys" array/],
    ['an array', '[]', /"keys" array/],
    ['an empty set', doc(), /no keys/],
    ['a key that is not an object', doc('key'), /key #1 is not a JSON object/],
    [
      'a key without kid',
      doc(b.publicJwk, { ...pub, kid: undefined }),
      /key #2 has no usable "kid"/,
    ],
    ['a kid with spaces', doc({ ...pub, kid: 'a b' }), /key #1 has no usable "kid"/],
    ['a private key', doc({ ...a.privateJwk }), /key "key-a" is a private key/],
    ['a private key with an empty d', doc({ ...pub, d: '' }), /key "key-a" is a private key/],
    [
      'an RSA key',
      doc({ kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'rsa' }),
      /key "rsa" is not an Ed25519 key/,
    ],
    ['an X25519 key', doc({ ...pub, crv: 'X25519' }), /not an Ed25519 key/],
    ['an EC key', doc({ ...pub, kty: 'EC', crv: 'P-256' }), /not an Ed25519 key/],
    ['alg RS256', doc({ ...pub, alg: 'RS256' }), /"alg" other than "EdDSA"/],
    ['use enc', doc({ ...pub, use: 'enc' }), /"use" other than "sig"/],
    ['key_ops without verify', doc({ ...pub, key_ops: ['sign'] }), /"key_ops" without "verify"/],
    ['x missing', doc({ ...pub, x: undefined }), /no "x" in canonical unpadded base64url/],
    ['x padded', doc({ ...pub, x: `${pub.x}=` }), /no "x" in canonical/],
    ['x of 31 bytes', doc({ ...pub, x: x(Buffer.alloc(31, 7)) }), /is not 32 bytes/],
    [
      'x the identity point',
      doc({ ...pub, x: x(Buffer.from('01'.padEnd(64, '0'), 'hex')) }),
      /small-order/,
    ],
    [
      'a duplicate kid',
      doc(a.publicJwk, { ...b.publicJwk, kid: 'key-a' }),
      /key "key-a" appears twice/,
    ],
    [
      '65 keys',
      doc(...Array.from({ length: 65 }, (_, i) => ({ ...pub, kid: `k${i}` }))),
      /more than 64/,
    ],
  ];

  it.each(refusals)('refuses %s, naming it without key material', (_name, json, message) => {
    let error: unknown;
    try {
      loadPinnedKeys(json);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    const text = (error as Error).message;
    expect(text).toMatch(message);
    expect(text).toMatch(/^AGENTPACK_CAPABILITY_KEYS/);
    for (const secret of [a.privateJwk.d, a.privateJwk.x, b.publicJwk.x]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('Ed25519 public key hygiene', () => {
  // The 8 points of small order, derived here with noble from one point of order 8.
  const t8 = ed.Point.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
  const torsion: Uint8Array[] = [];
  for (let p = ed.Point.ZERO, i = 0; i < 8; i++, p = p.add(t8)) torsion.push(p.toBytes());

  it('refuses every small-order point', () => {
    expect(t8.isSmallOrder()).toBe(true);
    expect(new Set(torsion.map((t) => x(t))).size).toBe(8);
    for (const point of torsion) {
      expect(ed25519PublicKeyProblem(point)).toBe('is a small-order point');
      expect(() => loadPinnedKeys(doc({ ...a.publicJwk, x: x(point) }))).toThrow(/small-order/);
    }
  });

  it('refuses the sign-flipped encodings of the identity and the point of order 2', () => {
    for (const hex of [
      '0100000000000000000000000000000000000000000000000000000000000080',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    ]) {
      expect(ed25519PublicKeyProblem(Buffer.from(hex, 'hex'))).not.toBeNull();
    }
  });

  it('refuses a y coordinate at or above 2^255 - 19 (a second spelling of a point)', () => {
    const p = Buffer.from(
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'hex',
    );
    for (const low of [0xed, 0xee, 0xf0, 0xff]) {
      p[0] = low;
      expect(ed25519PublicKeyProblem(p)).toBe('is not canonically encoded');
      p[31] = 0xff; // same with the sign bit set
      expect(ed25519PublicKeyProblem(p)).toBe('is not canonically encoded');
      p[31] = 0x7f;
    }
  });

  it('accepts real public keys, including one just below the field prime', () => {
    for (let i = 0; i < 20; i++) {
      expect(
        ed25519PublicKeyProblem(Buffer.from(generateSigningKey().publicJwk.x, 'base64url')),
      ).toBeNull();
    }
    const below = Buffer.from(
      'eaffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'hex',
    );
    expect(ed25519PublicKeyProblem(below)).toBeNull();
  });
});
