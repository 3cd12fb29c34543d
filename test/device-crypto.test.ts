/**
 * The enrolled device's key material and signatures (packages/protocol: curve-keys, device-identity, request-signing, attestation-signing):
 * canonical base64url keys; X25519 keys of small order refused exactly as libsodium refuses
 * them; Ed25519 keys that are small-order, non-canonical or off the curve refused, in agreement
 * with @noble/ed25519; the fingerprint and the signed strings against known answers computed
 * with other tools; signed requests and attestations checked by node:crypto and by
 * @noble/ed25519, and any change to a signed part refused.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  attestationString,
  decodeRawKey,
  deviceFingerprint,
  ed25519PrivateKeyObject,
  ed25519PublicKeyObject,
  encodeRawKey,
  generateDeviceKeys,
  isSmallOrderX25519,
  requestSigningString,
  sealingPublicKeyOf,
  signAttestation,
  signingKeyProblem,
  signingPublicKeyOf,
  signRequest,
  verifyAttestationSignature,
  verifyRequestSignature,
  x25519PublicKeyProblem,
  X25519_SMALL_ORDER_ENCODINGS,
  type AttestationFields,
  type RequestSigningParts,
} from '@agentpack-identity/protocol';

// noble leaves the hash to the caller (README: "hashes.sha512"); node:crypto provides it.
ed.hashes.sha512 = (message: Uint8Array) =>
  new Uint8Array(createHash('sha512').update(message).digest());

interface Sodium {
  ready: Promise<void>;
  crypto_scalarmult(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_scalarmult_base(secretKey: Uint8Array): Uint8Array;
}
const sodium = createRequire(import.meta.url)('libsodium-wrappers') as Sodium;
beforeAll(async () => {
  await sodium.ready;
});

const fromHex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));
const utf8 = (text: string) => new TextEncoder().encode(text);
const P = 2n ** 255n - 19n;
function le(n: bigint, topBit = false): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  if (topBit) out[31]! |= 0x80;
  return out;
}

describe('raw keys in canonical base64url', () => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  // 0xfb 0xff spells "-_" in base64url and "+/" in base64: both alphabets show.
  const key = Uint8Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? 0xfb : 0xff));
  const text = encodeRawKey(key);

  it('round-trips 32 bytes as 43 unpadded characters', () => {
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(text).toContain('-');
    expect(decodeRawKey(text)).toEqual(key);
  });

  it('refuses every other spelling and length', () => {
    // 43 characters carry 258 bits: the last character's 2 low bits must be 0.
    const lastIndex = ALPHABET.indexOf(text.at(-1)!);
    expect(lastIndex % 4).toBe(0);
    const trailingBits = `${text.slice(0, 42)}${ALPHABET[lastIndex + 1]}`;
    expect(Buffer.from(trailingBits, 'base64url')).toEqual(Buffer.from(key)); // Node is lenient
    for (const bad of [
      `${text}=`,
      Buffer.from(key).toString('base64').replace(/=+$/, ''),
      trailingBits,
      ` ${text}`,
      `${text}\n`,
      text.slice(0, 42),
      encodeRawKey(new Uint8Array(31)),
      encodeRawKey(new Uint8Array(33)),
      '',
      'A'.repeat(10_000),
    ]) {
      expect(decodeRawKey(bad), JSON.stringify(bad)).toBeNull();
    }
  });
});

describe('X25519 sealing keys', () => {
  it('refuses libsodium’s 7 small-order points, with and without the top bit (14 encodings)', () => {
    expect(new Set(X25519_SMALL_ORDER_ENCODINGS).size).toBe(14);
    for (const encoding of X25519_SMALL_ORDER_ENCODINGS) {
      const bytes = fromHex(encoding);
      expect(isSmallOrderX25519(bytes)).toBe(true);
      expect(x25519PublicKeyProblem(bytes), encoding).toBe('is a small-order point');
    }
    expect(x25519PublicKeyProblem(new Uint8Array(32))).toBe('is a small-order point');
  });

  it('the list is libsodium’s: crypto_scalarmult refuses each, and accepts a real key', () => {
    const secret = new Uint8Array(32).fill(0x42);
    for (const encoding of X25519_SMALL_ORDER_ENCODINGS) {
      expect(() => sodium.crypto_scalarmult(secret, fromHex(encoding)), encoding).toThrow();
    }
    const { sealing } = generateDeviceKeys();
    expect(sodium.crypto_scalarmult(secret, sealing.publicKey)).toHaveLength(32);
  });

  it('refuses the wrong length and non-canonical encodings; accepts generated keys', () => {
    expect(x25519PublicKeyProblem(new Uint8Array(31).fill(9))).toBe('is not 32 bytes');
    expect(x25519PublicKeyProblem(new Uint8Array(33).fill(9))).toBe('is not 32 bytes');
    const { sealing } = generateDeviceKeys();
    expect(x25519PublicKeyProblem(sealing.publicKey)).toBeNull();
    const topBit = sealing.publicKey.slice();
    topBit[31]! |= 0x80;
    expect(x25519PublicKeyProblem(topBit)).toBe('is not canonically encoded');
    for (const n of [P + 2n, P + 18n, 2n ** 255n - 1n]) {
      expect(x25519PublicKeyProblem(le(n)), String(n)).toBe('is not canonically encoded');
    }
    expect(x25519PublicKeyProblem(le(9n))).toBeNull(); // the base point
    expect(x25519PublicKeyProblem(le(P - 2n))).toBeNull();
  });
});

describe('Ed25519 signing keys', () => {
  it('refuses small-order points, non-canonical encodings, off-curve bytes and wrong lengths', () => {
    for (const [hex, reason] of [
      ['0100000000000000000000000000000000000000000000000000000000000000', /small-order/],
      ['0000000000000000000000000000000000000000000000000000000000000080', /small-order/],
      ['26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', /small-order/],
      ['ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', /small-order/],
      ['edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', /canonically/], // y = p
      ['eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', /canonically/], // y = p + 1
      ['0200000000000000000000000000000000000000000000000000000000000000', /not a point/], // y = 2
    ] as const) {
      expect(signingKeyProblem(fromHex(hex)), hex).toMatch(reason);
    }
    expect(signingKeyProblem(new Uint8Array(31))).toBe('is not 32 bytes');
    expect(signingKeyProblem(new Uint8Array(64))).toBe('is not 32 bytes');
    const { signing } = generateDeviceKeys();
    expect(signingKeyProblem(signing.publicKey)).toBeNull();
  });

  it('accepts exactly what @noble/ed25519 decodes strictly and is not of small order (property)', () => {
    const nobleAccepts = (bytes: Uint8Array) => {
      try {
        return !ed.Point.fromBytes(bytes, false).isSmallOrder();
      } catch {
        return false;
      }
    };
    // Random bytes (half are on the curve), plus y near p where the canonical check matters.
    const nearP = fc
      .tuple(fc.integer({ min: -40, max: 40 }), fc.boolean())
      .map(([delta, sign]) =>
        le((((P + BigInt(delta)) % 2n ** 255n) + 2n ** 255n) % 2n ** 255n, sign),
      );
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), nearP), (bytes) => {
        return (signingKeyProblem(bytes) === null) === nobleAccepts(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('generated device keys', () => {
  it('are raw 32-byte pairs that other implementations derive the same way', () => {
    const keys = generateDeviceKeys();
    for (const part of [keys.sealing, keys.signing]) {
      expect(part.publicKey).toHaveLength(32);
      expect(part.privateKey).toHaveLength(32);
    }
    expect(sodium.crypto_scalarmult_base(keys.sealing.privateKey)).toEqual(keys.sealing.publicKey);
    expect(ed.getPublicKey(keys.signing.privateKey)).toEqual(keys.signing.publicKey);
    expect(sealingPublicKeyOf(keys.sealing.privateKey)).toEqual(keys.sealing.publicKey);
    expect(signingPublicKeyOf(keys.signing.privateKey)).toEqual(keys.signing.publicKey);
    expect(x25519PublicKeyProblem(keys.sealing.publicKey)).toBeNull();
    expect(signingKeyProblem(keys.signing.publicKey)).toBeNull();
    expect(generateDeviceKeys().signing.privateKey).not.toEqual(keys.signing.privateKey);
  });
});

describe('fingerprint', () => {
  const sealing = Uint8Array.from({ length: 32 }, (_, i) => i);
  const signing = Uint8Array.from({ length: 32 }, (_, i) => 32 + i);

  it('matches a known answer (Python hashlib) and depends on the order of the keys', () => {
    expect(deviceFingerprint(sealing, signing)).toBe(
      'SHA256:_eq5rPNxA2K9JljNyaKej5x1f8-YEWA6jER80dkVEQg',
    );
    expect(deviceFingerprint(signing, sealing)).not.toBe(deviceFingerprint(sealing, signing));
  });

  it('is taken over two 32-byte keys only', () => {
    expect(() => deviceFingerprint(sealing.subarray(1), signing)).toThrow(TypeError);
    expect(() => deviceFingerprint(sealing, new Uint8Array(33))).toThrow(TypeError);
  });
});

describe('signed requests', () => {
  const keys = generateDeviceKeys();
  const publicKey = ed25519PublicKeyObject(keys.signing.publicKey);
  const NOW = 1_700_000_123_456;
  const body = Buffer.from(JSON.stringify({ name: 'openai_key', seal: true }));

  function signed(overrides: Partial<Parameters<typeof signRequest>[0]> = {}) {
    const input = {
      method: 'POST',
      path: '/secrets/get',
      body,
      signingSeed: keys.signing.privateKey,
      nowMs: NOW,
      ...overrides,
    };
    const headers = signRequest(input);
    const parts: RequestSigningParts = {
      method: input.method.toUpperCase(),
      path: input.path,
      timestamp: headers['x-agentpack-timestamp'],
      nonce: headers['x-agentpack-nonce'],
      body: typeof input.body === 'string' ? Buffer.from(input.body) : input.body,
    };
    return { headers, parts, signature: headers['x-agentpack-signature'] };
  }

  it('signs a known string (body hash from sha256sum)', () => {
    expect(
      requestSigningString({
        method: 'POST',
        path: '/secrets/get',
        timestamp: '1700000123',
        nonce: 'AAAAAAAAAAAAAAAAAAAAAAAA',
        body: Buffer.from('{}'),
      }),
    ).toBe(
      'agentpack-request-v1\nPOST\n/secrets/get\n1700000123\nAAAAAAAAAAAAAAAAAAAAAAAA\nRBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o',
    );
  });

  it('signs the v2 string, ending with the delegation id, for a delegated request', () => {
    const delegation = 'dg_AAAAAAAAAAAAAAAAAAAAAA';
    expect(
      requestSigningString({
        method: 'POST',
        path: '/secrets/get',
        timestamp: '1700000123',
        nonce: 'AAAAAAAAAAAAAAAAAAAAAAAA',
        body: Buffer.from('{}'),
        delegation,
      }),
    ).toBe(
      'agentpack-request-v2\nPOST\n/secrets/get\n1700000123\nAAAAAAAAAAAAAAAAAAAAAAAA\nRBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o\ndg_AAAAAAAAAAAAAAAAAAAAAA',
    );
    const v2 = signed({ delegation, nonce: 'bm9uY2Utbm9uY2Utbm9uY2Ut' });
    expect(v2.headers['x-agentpack-delegation']).toBe(delegation);
    const parts = { ...v2.parts, delegation };
    expect(verifyRequestSignature(publicKey, parts, v2.signature)).toBe(true);
    const noble = ed.sign(utf8(requestSigningString(parts)), keys.signing.privateKey);
    expect(Buffer.from(noble).toString('base64url')).toBe(v2.signature);
    // v2 never passes as v1, nor for another delegation; v1 never passes for a delegation.
    expect(verifyRequestSignature(publicKey, v2.parts, v2.signature)).toBe(false);
    expect(
      verifyRequestSignature(
        publicKey,
        { ...parts, delegation: 'dg_BAAAAAAAAAAAAAAAAAAAAA' },
        v2.signature,
      ),
    ).toBe(false);
    const v1 = signed({ nonce: 'bm9uY2Utbm9uY2Utbm9uY2Ut' });
    expect(v1.headers).not.toHaveProperty('x-agentpack-delegation');
    expect(verifyRequestSignature(publicKey, v1.parts, v1.signature)).toBe(true);
    expect(verifyRequestSignature(publicKey, { ...v1.parts, delegation }, v1.signature)).toBe(
      false,
    );
    // A delegation id that is not one line of printable ASCII cannot be signed or verified.
    for (const bad of ['', `${delegation}\nPOST`, 'dg with space']) {
      expect(() => signed({ delegation: bad })).toThrow(/delegation/);
      expect(verifyRequestSignature(publicKey, { ...parts, delegation: bad }, v2.signature)).toBe(
        false,
      );
    }
  });

  it('makes the three headers: unix seconds, an 18-byte nonce, a 64-byte signature', () => {
    const { headers } = signed();
    expect(Object.keys(headers).sort()).toEqual([
      'x-agentpack-nonce',
      'x-agentpack-signature',
      'x-agentpack-timestamp',
    ]);
    expect(headers['x-agentpack-timestamp']).toBe('1700000123');
    expect(headers['x-agentpack-nonce']).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(Buffer.from(headers['x-agentpack-nonce'], 'base64url')).toHaveLength(18);
    expect(Buffer.from(headers['x-agentpack-signature'], 'base64url')).toHaveLength(64);
    expect(signed().headers['x-agentpack-nonce']).not.toBe(headers['x-agentpack-nonce']);
  });

  it('verifies with node:crypto and with @noble/ed25519', () => {
    const { parts, signature } = signed();
    expect(verifyRequestSignature(publicKey, parts, signature)).toBe(true);
    const message = utf8(requestSigningString(parts));
    expect(
      ed.verify(Buffer.from(signature, 'base64url'), message, keys.signing.publicKey, {
        zip215: false,
      }),
    ).toBe(true);
  });

  it('accepts a signature made by @noble/ed25519, and signs identically with a KeyObject', () => {
    const { parts, signature } = signed({ nonce: 'bm9uY2Utbm9uY2Utbm9uY2Ut' });
    const noble = ed.sign(utf8(requestSigningString(parts)), keys.signing.privateKey);
    expect(Buffer.from(noble).toString('base64url')).toBe(signature); // Ed25519 is deterministic
    const viaKeyObject = signed({
      nonce: 'bm9uY2Utbm9uY2Utbm9uY2Ut',
      signingSeed: ed25519PrivateKeyObject(keys.signing.privateKey),
    });
    expect(viaKeyObject.signature).toBe(signature);
    expect(signed({ body: body.toString() }).parts.body).toEqual(body); // a string is UTF-8
  });

  it('refuses any change to the method, path, timestamp, nonce, body, signature or key', () => {
    const { parts, signature } = signed();
    const other = ed25519PublicKeyObject(generateDeviceKeys().signing.publicKey);
    const flipped = Buffer.from(signature, 'base64url');
    flipped[10]! ^= 1;
    const changedBody = Buffer.from(body);
    changedBody[changedBody.length - 2]! ^= 1;
    const cases: Array<[string, RequestSigningParts, string, typeof publicKey]> = [
      ['method', { ...parts, method: 'PUT' }, signature, publicKey],
      ['path', { ...parts, path: '/secrets/put' }, signature, publicKey],
      ['path suffix', { ...parts, path: '/secrets/get/' }, signature, publicKey],
      ['timestamp', { ...parts, timestamp: '1700000124' }, signature, publicKey],
      ['timestamp spelling', { ...parts, timestamp: `0${parts.timestamp}` }, signature, publicKey],
      ['nonce', { ...parts, nonce: 'AAAAAAAAAAAAAAAAAAAAAAAA' }, signature, publicKey],
      ['body', { ...parts, body: changedBody }, signature, publicKey],
      ['empty body', { ...parts, body: Buffer.alloc(0) }, signature, publicKey],
      ['signature', parts, flipped.toString('base64url'), publicKey],
      ['key', parts, signature, other],
    ];
    for (const [name, changed, sig, key] of cases) {
      expect(verifyRequestSignature(key, changed, sig), name).toBe(false);
    }
    expect(verifyRequestSignature(publicKey, parts, signature)).toBe(true);
  });

  it('refuses a body changed anywhere (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (bytes, at, mask) => {
          const { parts, signature } = signed({ body: Buffer.from(bytes) });
          const altered = Buffer.from(bytes);
          altered[at % altered.length]! ^= mask;
          return (
            verifyRequestSignature(publicKey, parts, signature) &&
            !verifyRequestSignature(publicKey, { ...parts, body: altered }, signature)
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('never throws on malformed signatures, parts or keys: it answers false', () => {
    const { parts, signature } = signed();
    const bytes = Buffer.from(signature, 'base64url');
    const x25519Key = generateKeyPairSync('x25519').publicKey;
    for (const bad of [
      `${signature}==`,
      bytes.toString('base64'),
      bytes.subarray(0, 63).toString('base64url'),
      Buffer.concat([bytes, Buffer.from([0])]).toString('base64url'),
      '',
      '!!!',
      'A'.repeat(100_000),
    ]) {
      expect(verifyRequestSignature(publicKey, parts, bad), bad.slice(0, 20)).toBe(false);
    }
    for (const changed of [
      { ...parts, method: 'post' },
      { ...parts, path: 'secrets/get' },
      { ...parts, path: '/secrets/get\nPOST' },
      { ...parts, timestamp: '-1' },
      { ...parts, timestamp: '1e9' },
      { ...parts, nonce: 'short' },
      { ...parts, nonce: `${parts.nonce}=` },
      { ...parts, body: 'text' as unknown as Buffer },
    ]) {
      expect(verifyRequestSignature(publicKey, changed, signature)).toBe(false);
    }
    expect(verifyRequestSignature(x25519Key, parts, signature)).toBe(false);
  });

  it('refuses to sign malformed parts', () => {
    const base = { body, signingSeed: keys.signing.privateKey, nowMs: NOW };
    expect(() => signRequest({ ...base, method: 'POST', path: 'no-slash' })).toThrow(TypeError);
    expect(() => signRequest({ ...base, method: 'POST', path: '/a b' })).toThrow(TypeError);
    expect(() => signRequest({ ...base, method: 'PO ST', path: '/x' })).toThrow(TypeError);
    expect(() =>
      signRequest({ ...base, method: 'POST', path: '/x', nonce: 'AAAAAAAAAAAAAAAAAAAA' }),
    ).toThrow(/nonce/); // 15 bytes
    expect(() => signRequest({ ...base, method: 'POST', path: '/x', nowMs: NaN })).toThrow(
      TypeError,
    );
    expect(signRequest({ ...base, method: 'post', path: '/x' })['x-agentpack-signature']).toMatch(
      /^[A-Za-z0-9_-]{86}$/,
    );
  });
});

describe('attestations', () => {
  const keys = generateDeviceKeys();
  const publicKey = ed25519PublicKeyObject(keys.signing.publicKey);
  const fields: AttestationFields = {
    job_id: 'job-42',
    input_sha256: 'a'.repeat(64),
    output_sha256: 'b'.repeat(64),
    rc: 0,
  };

  it('signs a known string', () => {
    expect(attestationString({ ...fields, rc: -2 })).toBe(
      `agentpack-attestation-v1\njob-42\n${'a'.repeat(64)}\n${'b'.repeat(64)}\n-2`,
    );
  });

  it('verifies with node:crypto and with @noble/ed25519', () => {
    const signature = signAttestation(fields, keys.signing.privateKey);
    expect(verifyAttestationSignature(publicKey, fields, signature)).toBe(true);
    expect(
      ed.verify(
        Buffer.from(signature, 'base64url'),
        utf8(attestationString(fields)),
        keys.signing.publicKey,
      ),
    ).toBe(true);
    expect(signAttestation(fields, ed25519PrivateKeyObject(keys.signing.privateKey))).toBe(
      signature,
    );
  });

  it('refuses any changed field, signature or key', () => {
    const signature = signAttestation(fields, keys.signing.privateKey);
    const other = ed25519PublicKeyObject(generateDeviceKeys().signing.publicKey);
    for (const changed of [
      { ...fields, job_id: 'job-43' },
      { ...fields, input_sha256: `${'a'.repeat(63)}b` },
      { ...fields, output_sha256: `${'b'.repeat(63)}a` },
      { ...fields, rc: 1 },
      { ...fields, rc: -0.5 },
      { ...fields, input_sha256: fields.output_sha256, output_sha256: fields.input_sha256 },
    ]) {
      expect(
        verifyAttestationSignature(publicKey, changed, signature),
        JSON.stringify(changed),
      ).toBe(false);
    }
    expect(verifyAttestationSignature(other, fields, signature)).toBe(false);
    expect(verifyAttestationSignature(publicKey, fields, `${signature}=`)).toBe(false);
    expect(verifyAttestationSignature(publicKey, fields, signature.slice(1))).toBe(false);
  });

  it('refuses fields that would give two attestations one signature', () => {
    // With line breaks allowed, ("a\nb", "c", "d") and ("a", "b\nc", "d") would sign alike.
    const signature = signAttestation({ ...fields, job_id: 'a' }, keys.signing.privateKey);
    const shifted = { job_id: 'a\nb', input_sha256: 'c', output_sha256: 'd', rc: 0 };
    expect(() => attestationString(shifted)).toThrow(/control characters/);
    expect(verifyAttestationSignature(publicKey, shifted, signature)).toBe(false);
    expect(() => attestationString({ ...fields, output_sha256: 'x\ry' })).toThrow(TypeError);
    expect(() => attestationString({ ...fields, rc: 1.5 })).toThrow(/rc/);
    expect(() => attestationString({ ...fields, rc: Number.NaN })).toThrow(/rc/);
    expect(() =>
      signAttestation({ ...fields, job_id: 'a\u0000' }, keys.signing.privateKey),
    ).toThrow(TypeError);
  });
});

describe('ed25519PublicKeyObject', () => {
  it('imports a raw key, and refuses the wrong length', () => {
    const { signing } = generateDeviceKeys();
    const key = ed25519PublicKeyObject(signing.publicKey);
    expect(key.asymmetricKeyType).toBe('ed25519');
    expect(key.type).toBe('public');
    expect(() => ed25519PublicKeyObject(signing.publicKey.subarray(1))).toThrow(TypeError);
    expect(() => ed25519PrivateKeyObject(new Uint8Array(31))).toThrow(TypeError);
  });
});
