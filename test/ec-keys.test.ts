/**
 * ES256 key helpers (functions/src/tokens/ec-keys.ts) against node's own crypto and jose: the
 * DER → JOSE signature conversion agrees with node's `dsaEncoding: 'der'` and `'ieee-p1363'`
 * for many signatures, short `r`/`s` (leading zero bytes) included, and refuses malformed DER
 * of every kind; the published JWK and its thumbprint agree with jose; other keys are refused.
 */
import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { derToJoseSignature, ecPublicJwk, ecThumbprint } from '../functions/src/tokens/ec-keys.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

/** DER of `r ‖ s`, written here by hand (minimal INTEGERs, a 0x00 before a high bit). */
function joseToDer(raw: Buffer): Buffer {
  const integer = (value: Buffer) => {
    let at = 0;
    while (at < value.length - 1 && value[at] === 0) at++;
    let bytes = value.subarray(at);
    if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
    return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
  };
  const body = Buffer.concat([integer(raw.subarray(0, 32)), integer(raw.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

const p1363 = (key: KeyObject, data: Buffer) =>
  sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
const der = (key: KeyObject, data: Buffer) => sign('sha256', data, { key, dsaEncoding: 'der' });
const verifiesRaw = (data: Buffer, signature: Buffer) =>
  verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
const verifiesDer = (data: Buffer, signature: Buffer) =>
  verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, signature);

describe('derToJoseSignature', () => {
  it('agrees with node both ways for many signatures', () => {
    for (let i = 0; i < 300; i++) {
      const data = randomBytes(1 + (i % 64));
      const fromDer = der(privateKey, data);
      const raw = derToJoseSignature(fromDer);
      expect(raw.length).toBe(64);
      expect(verifiesRaw(data, raw)).toBe(true);
      // And back: node's raw signature, written as DER by hand, is node's DER and converts to itself.
      expect(joseToDer(raw).equals(fromDer)).toBe(true);
      const rawFromNode = p1363(privateKey, data);
      const derOfRaw = joseToDer(rawFromNode);
      expect(verifiesDer(data, derOfRaw)).toBe(true);
      expect(derToJoseSignature(derOfRaw).equals(rawFromNode)).toBe(true);
    }
  });

  it('pads short r and s (leading zero bytes) to 32 bytes each', () => {
    let shortR = 0;
    let shortS = 0;
    for (let i = 0; i < 50_000 && (shortR < 2 || shortS < 2); i++) {
      const data = Buffer.from(`short ${i}`);
      const signature = der(privateKey, data);
      const rLength = signature[3]!;
      const sLength = signature[4 + rLength + 1]!;
      if (rLength >= 32 && sLength >= 32) continue;
      if (rLength < 32) shortR++;
      if (sLength < 32) shortS++;
      const raw = derToJoseSignature(signature);
      expect(raw.length).toBe(64);
      if (rLength < 32) expect(raw[0]).toBe(0);
      if (sLength < 32) expect(raw[32]).toBe(0);
      expect(verifiesRaw(data, raw)).toBe(true);
      expect(joseToDer(raw).equals(signature)).toBe(true);
    }
    expect(shortR).toBeGreaterThanOrEqual(2);
    expect(shortS).toBeGreaterThanOrEqual(2);
  });

  it('converts hand-made DER at the edges: 1-byte, 31-byte, 32-byte and 0x00-prefixed integers', () => {
    const int = (bytes: number[]) => [0x02, bytes.length, ...bytes];
    const seq = (...parts: number[][]) => {
      const body = parts.flat();
      return Buffer.from([0x30, body.length, ...body]);
    };
    const high = [0x80, ...Array(31).fill(0x11)];
    const thirtyOne = Array(31).fill(0x7f);
    const thirtyTwo = [0x7f, ...Array(31).fill(0x22)];
    const raw = derToJoseSignature(seq(int([1]), int([0, ...high])));
    expect(raw.equals(Buffer.from([...Array(31).fill(0), 1, ...high]))).toBe(true);
    expect(
      derToJoseSignature(seq(int(thirtyOne), int(thirtyTwo))).equals(
        Buffer.from([0, ...thirtyOne, ...thirtyTwo]),
      ),
    ).toBe(true);
  });

  it('refuses malformed DER of every kind', () => {
    const good = [...der(privateKey, Buffer.from('x'))];
    const int = (bytes: number[]) => [0x02, bytes.length, ...bytes];
    const seq = (...parts: number[][]) => {
      const body = parts.flat();
      return [0x30, body.length, ...body];
    };
    const r = int([0x01, 0x02, 0x03]);
    const cases: [string, number[]][] = [
      ['not a SEQUENCE', [0x31, ...good.slice(1)]],
      ['not a SEQUENCE', [0x30, 0x04, 0x02, 0x01, 0x01, 0x02]],
      ['not a SEQUENCE', []],
      ['long-form length', [0x30, 0x81, good[1]!, ...good.slice(2)]],
      ['wrong SEQUENCE length', [...good, 0x00]],
      ['wrong SEQUENCE length', good.slice(0, -1)],
      ['trailing bytes', [0x30, good[1]! + 1, ...good.slice(2), 0x00]],
      ['not an INTEGER', seq([0x03, 0x01, 0x01], r)],
      ['not an INTEGER', seq(r, [0x04, 0x01, 0x01])],
      ['bad INTEGER length', seq([0x02, 0x00], r, [0x00])],
      ['bad INTEGER length', seq(r, [0x02, 0x05, 0x01, 0x02])],
      ['bad INTEGER length', seq([0x02, 34, ...Array(34).fill(0x01)], r)],
      ['negative INTEGER', seq(int([0x80, 0x01]), r)],
      ['negative INTEGER', seq(r, int([0xff]))],
      ['non-minimal INTEGER', seq(int([0x00, 0x7f]), r)],
      ['non-minimal INTEGER', seq(r, int([0x00, 0x00, 0x01]))],
      ['INTEGER wider than 32 bytes', seq(int([0x01, ...Array(32).fill(0x01)]), r)],
      ['trailing bytes', seq(r, r, [0x00])],
      ['trailing bytes', seq(r, r, r)],
    ];
    for (const [why, bytes] of cases) {
      expect(() => derToJoseSignature(Buffer.from(bytes)), why).toThrow(
        `the ECDSA signature is not valid DER: ${why}`,
      );
    }
    // The untouched signature converts: the cases fail for their one change only.
    expect(derToJoseSignature(Buffer.from(good)).length).toBe(64);
  });
});

describe('ecPublicJwk', () => {
  it('is the public JWK jose exports, named by the RFC 7638 thumbprint jose computes', async () => {
    const jwk = ecPublicJwk(publicKey);
    const exported = await exportJWK(publicKey);
    expect(jwk).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: exported.x,
      y: exported.y,
      kid: await calculateJwkThumbprint(exported),
      alg: 'ES256',
      use: 'sig',
    });
    expect(ecThumbprint(jwk.x, jwk.y)).toBe(jwk.kid);
    // From the private key and from a PEM (as Cloud KMS answers GetPublicKey): the same key.
    expect(ecPublicJwk(privateKey)).toEqual(jwk);
    expect(ecPublicJwk(publicKey.export({ type: 'spki', format: 'pem' }) as string)).toEqual(jwk);
    expect(Object.keys(jwk)).not.toContain('d');
  });

  it('refuses RSA, Ed25519 and P-384 keys, as KeyObjects and as PEMs', () => {
    const others = [
      generateKeyPairSync('rsa', { modulusLength: 2048 }),
      generateKeyPairSync('ed25519'),
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' }),
      generateKeyPairSync('ec', { namedCurve: 'secp256k1' }),
    ];
    for (const pair of others) {
      const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
      for (const key of [pair.publicKey, pair.privateKey, pem]) {
        expect(() => ecPublicJwk(key)).toThrow('the signing key is not an EC P-256 key');
      }
    }
  });
});
