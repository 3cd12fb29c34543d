/**
 * The Cloud KMS token signer with the real `@google-cloud/kms` client, over real gRPC, against
 * the fake KeyManagementService in helpers/fake-kms.ts: JWSs it signs verify with `jose` under
 * the key it publishes, named by its RFC 7638 thumbprint; every spoiled answer (checksums, bytes,
 * names, a signature by another key) is retried and, when it persists, refused; unavailability
 * is `unavailable`; public keys are asked for once per version; the published keys follow the
 * key's versions (rotation) on an injected clock, and a failed listing never loses good keys.
 */
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import {
  calculateJwkThumbprint,
  compactVerify,
  createLocalJWKSet,
  exportJWK,
  importJWK,
  jwtVerify,
} from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../functions/src/adapters/crc32c.js';
import {
  CRYPTO_KEY_VERSION_NAME,
  KMS_SIGNER_RETRY_MS,
  kmsSigner,
  openKmsSigner,
  type KmsSigningClient,
} from '../functions/src/adapters/kms-signer.js';
import { ApiError } from '../functions/src/core/errors.js';
import type { EcPublicJwk, TokenSigner } from '../functions/src/ports/token-signer.js';
import { manualClock } from './helpers/clock.js';
import {
  FAKE_KMS_KEY,
  FAKE_KMS_SIGNING_KEY,
  startFakeKms,
  type FakeKms,
  type PublicKeyCorruption,
  type SignCorruption,
} from './helpers/fake-kms.js';

const REFRESH_MS = 60_000;

let kms: FakeKms;
const clock = manualClock();
const opened: TokenSigner[] = [];
const fakes: FakeKms[] = [];
let refreshErrors: Error[] = [];

beforeAll(async () => {
  kms = await startFakeKms();
});
afterAll(async () => {
  await kms?.stop();
});
afterEach(async () => {
  kms.reset();
  refreshErrors = [];
  await Promise.all(opened.splice(0).map((signer) => signer.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.stop()));
});

/** A signer through the real client over `fake`, on the test clock. */
async function open(
  versionName: string,
  fake: FakeKms = kms,
  timeoutMs?: number,
): Promise<TokenSigner> {
  const signer = await openKmsSigner({
    versionName,
    apiEndpoint: '127.0.0.1',
    port: fake.port,
    insecure: true,
    clock,
    refreshMs: REFRESH_MS,
    onRefreshError: (error) => refreshErrors.push(error),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  opened.push(signer);
  return signer;
}

/** A fake of its own, for a test that changes the signing key's versions. */
async function ownFake(): Promise<FakeKms> {
  const fake = await startFakeKms();
  fakes.push(fake);
  return fake;
}

/** The calls `fake` receives from now on. */
function callsFrom(fake: FakeKms): () => string[] {
  const before = fake.calls.length;
  return () => fake.calls.slice(before);
}

const count = (calls: string[], method: string) => calls.filter((c) => c === method).length;

/** The error `promise` rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A tiny run-token-shaped JWT, signed by `signer`, built by hand. */
async function signedJwt(signer: TokenSigner, claims: object = { sub: 'run-1' }) {
  const kid = await signer.signingKid();
  const exp = Math.floor(Date.now() / 1000) + 600;
  const input = `${b64({ alg: 'ES256', typ: 'agentpack-run+jwt', kid })}.${b64({ ...claims, exp })}`;
  const signature = await signer.sign(kid, Buffer.from(input));
  expect(signature.length).toBe(64);
  return `${input}.${signature.toString('base64url')}`;
}

/** The published JWK of a fake version, computed from its key by jose. */
async function jwkOf(fake: FakeKms, version: string) {
  const jwk = await exportJWK(fake.signingPublicKey(version));
  return { ...jwk, kid: await calculateJwkThumbprint(jwk) };
}

const kids = (keys: EcPublicJwk[]) => keys.map((k) => k.kid);

describe('the KMS signer over gRPC', () => {
  it('signs a JWT that jose verifies with the published JWK, named by its RFC 7638 thumbprint', async () => {
    const calls = callsFrom(kms);
    const v1 = kms.signingVersion(1);
    const signer = await open(v1);
    const token = await signedJwt(signer, { sub: 'run-1', aud: 'agentpack' });
    const published = await signer.publishedKeys();
    expect(published).toHaveLength(1);
    const [jwk] = published as [EcPublicJwk];
    const expected = await jwkOf(kms, v1);
    expect(jwk).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: expected.x,
      y: expected.y,
      kid: expected.kid,
      alg: 'ES256',
      use: 'sig',
    });
    expect(await calculateJwkThumbprint(jwk)).toBe(jwk.kid);
    expect(await signer.signingKid()).toBe(jwk.kid);

    const { payload, protectedHeader } = await jwtVerify(token, await importJWK(jwk, 'ES256'), {
      algorithms: ['ES256'],
      typ: 'agentpack-run+jwt',
      audience: 'agentpack',
    });
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'agentpack-run+jwt', kid: jwk.kid });
    expect(payload.sub).toBe('run-1');
    // One public key, one signature, one listing: nothing more.
    expect(calls()).toEqual(['GetPublicKey', 'AsymmetricSign', 'ListCryptoKeyVersions']);
  });

  it('asks for the public key once, however many signs (concurrent ones too)', async () => {
    const signer = await open(kms.signingVersion(1));
    const calls = callsFrom(kms);
    const kid = await signer.signingKid();
    const data = Array.from({ length: 6 }, (_, i) => Buffer.from(`input ${i}`));
    const signatures = await Promise.all(data.map((d) => signer.sign(kid, d)));
    for (let i = 0; i < 6; i++) signatures.push(await signer.sign(kid, data[i % 6]!));
    await signer.publishedKeys();
    await signer.signingKid();
    const key = kms.signingPublicKey(kms.signingVersion(1));
    signatures.forEach((signature, i) => {
      expect(verify('sha256', data[i % 6]!, { key, dsaEncoding: 'ieee-p1363' }, signature)).toBe(
        true,
      );
    });
    expect(count(calls(), 'GetPublicKey')).toBe(1);
    expect(count(calls(), 'AsymmetricSign')).toBe(12);

    const cold = await open(kms.signingVersion(1));
    const coldCalls = callsFrom(kms);
    await Promise.all([cold.signingKid(), cold.sign(kid, data[0]!), cold.publishedKeys()]);
    expect(count(coldCalls(), 'GetPublicKey')).toBe(1);
  });

  it('refuses a kid that is not the signing key’s, without calling KMS', async () => {
    const signer = await open(kms.signingVersion(1));
    const kid = await signer.signingKid();
    const calls = callsFrom(kms);
    for (const wrong of [`${kid}x`, '', (await jwkOf(kms, kms.signingVersion(1))).kid.slice(1)]) {
      const error = await rejection(signer.sign(wrong, Buffer.from('secret input')));
      expect(error).not.toBeInstanceOf(ApiError);
      expect(error.message).toMatch(/the kid is not the signing key's/);
      expect(error.message).not.toContain('secret input');
    }
    expect(calls()).toEqual([]);
  });

  it('refuses a signing key name that is not a CryptoKeyVersion', async () => {
    const client = {} as KmsSigningClient;
    for (const bad of [
      FAKE_KMS_SIGNING_KEY,
      `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/`,
      `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/0`,
      `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/1/publicKey`,
      `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/x`,
      '',
    ]) {
      expect(CRYPTO_KEY_VERSION_NAME.test(bad)).toBe(false);
      expect(() => kmsSigner(client, bad)).toThrow(/must be a CryptoKeyVersion name/);
    }
    await expect(open('projects/p/locations/global/keyRings/r')).rejects.toThrow(
      /must be a CryptoKeyVersion name/,
    );
    expect(CRYPTO_KEY_VERSION_NAME.test(`${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/12`)).toBe(true);
  });

  it('refuses a version of a symmetric key, of another algorithm, or not enabled, clearly', async () => {
    const fake = await ownFake();
    const symmetric = await open(`${FAKE_KMS_KEY}/cryptoKeyVersions/1`, fake);
    const error = await rejection(symmetric.signingKid());
    expect(error).not.toBeInstanceOf(ApiError);
    expect(error.message).toMatch(
      /^Cloud KMS GetPublicKey failed \(9 FAILED_PRECONDITION\): .*must be an ENABLED version of an ASYMMETRIC_SIGN CryptoKey with algorithm EC_SIGN_P256_SHA256/,
    );
    expect((await rejection(symmetric.sign('k', Buffer.from('x')))).message).toMatch(
      /ASYMMETRIC_SIGN/,
    );

    const p384 = fake.addSigningVersion({ algorithm: 'EC_SIGN_P384_SHA384' });
    const other = await open(p384, fake);
    for (const attempt of [() => other.signingKid(), () => other.publishedKeys()]) {
      expect((await rejection(attempt())).message).toBe(
        `Cloud KMS key version ${p384} is EC_SIGN_P384_SHA384, not EC_SIGN_P256_SHA256: tokens are signed with ES256 only`,
      );
    }

    const v3 = fake.addSigningVersion();
    fake.disableSigningVersion(v3);
    expect((await rejection((await open(v3, fake)).signingKid())).message).toMatch(
      /FAILED_PRECONDITION.*is not enabled/,
    );
    // The P-256 signer on version 1 neither publishes nor fetches the P-384 or disabled ones.
    const calls = callsFrom(fake);
    const v1 = await open(fake.signingVersion(1), fake);
    expect(kids(await v1.publishedKeys())).toEqual([
      (await jwkOf(fake, fake.signingVersion(1))).kid,
    ]);
    expect(calls()).toEqual(['GetPublicKey', 'ListCryptoKeyVersions']);
  });
});

describe('integrity of AsymmetricSign', () => {
  const spoilings: [SignCorruption, RegExp][] = [
    ['checksum', /the signature does not match its checksum/],
    ['data', /the signature does not match its checksum/],
    ['unverified', /the digest checksum was not verified/],
    ['other-key', /the signature does not verify with the signing key/],
    ['name', /the answer names another key version/],
  ];

  it.each(spoilings)('discards one spoiled answer (%s) and retries', async (how) => {
    const signer = await open(kms.signingVersion(1));
    const kid = await signer.signingKid();
    kms.corruptNextSign(1, how);
    const calls = callsFrom(kms);
    const data = Buffer.from('header.payload');
    const signature = await signer.sign(kid, data);
    expect(calls()).toEqual(['AsymmetricSign', 'AsymmetricSign']);
    const key = kms.signingPublicKey(kms.signingVersion(1));
    expect(verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
  });

  it.each(spoilings)(
    'refuses an answer that stays spoiled (%s) after 3 attempts, returning no signature',
    async (how, reason) => {
      const signer = await open(kms.signingVersion(1));
      const kid = await signer.signingKid();
      kms.corruptNextSign(3, how);
      const calls = callsFrom(kms);
      const data = Buffer.from('eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LWNsYWltcw');
      const error = await rejection(signer.sign(kid, data));
      expect(error).not.toBeInstanceOf(ApiError);
      expect(error.message).toMatch(
        /^Cloud KMS AsymmetricSign: the response failed its integrity check/,
      );
      expect(error.message).toMatch(reason);
      expect(error.message).toMatch(/3 times; refused$/);
      const digest = createHash('sha256').update(data).digest();
      for (const secret of [data.toString(), digest.toString('hex'), digest.toString('base64')]) {
        expect(error.message).not.toContain(secret);
      }
      expect(calls()).toEqual(['AsymmetricSign', 'AsymmetricSign', 'AsymmetricSign']);
      // Honest again: it signs.
      expect((await signer.sign(kid, data)).length).toBe(64);
    },
  );
});

describe('integrity of GetPublicKey', () => {
  const spoilings: [PublicKeyCorruption, RegExp][] = [
    ['checksum', /the public key does not match its checksum/],
    ['data', /the public key does not match its checksum/],
    ['name', /the answer names another key version/],
  ];

  it.each(spoilings)('discards one spoiled answer (%s) and retries', async (how) => {
    const signer = await open(kms.signingVersion(1));
    kms.corruptNextPublicKey(1, how);
    const calls = callsFrom(kms);
    expect(await signer.signingKid()).toBe((await jwkOf(kms, kms.signingVersion(1))).kid);
    expect(calls()).toEqual(['GetPublicKey', 'GetPublicKey']);
  });

  it.each(spoilings)(
    'refuses an answer that stays spoiled (%s), keeps no failure, and asks again next time',
    async (how, reason) => {
      const signer = await open(kms.signingVersion(1));
      kms.corruptNextPublicKey(3, how);
      const calls = callsFrom(kms);
      for (const attempt of [() => signer.signingKid(), () => signer.publishedKeys()]) {
        const error = await rejection(attempt());
        expect(error).not.toBeInstanceOf(ApiError);
        expect(error.message).toMatch(
          /^Cloud KMS GetPublicKey: the response failed its integrity check/,
        );
        expect(error.message).toMatch(reason);
        kms.corruptNextPublicKey(3, how);
      }
      kms.reset();
      expect(calls()).toEqual(Array(6).fill('GetPublicKey'));
      expect(await signer.signingKid()).toBe((await jwkOf(kms, kms.signingVersion(1))).kid);
      expect(calls()).toEqual(Array(7).fill('GetPublicKey'));
    },
  );
});

describe('KMS unavailable', () => {
  it('answers ApiError unavailable (503) for every method with a cold cache, and recovers', async () => {
    const signer = await open(kms.signingVersion(1), kms, 500);
    kms.setUnavailable(true);
    for (const attempt of [
      () => signer.signingKid(),
      () => signer.sign('kid', Buffer.from('x')),
      () => signer.publishedKeys(),
    ]) {
      const error = await rejection(attempt());
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).code).toBe('unavailable');
      expect((error as ApiError).status).toBe(503);
      expect(error.message).toBe('the key service is unavailable');
    }
    kms.setUnavailable(false);
    expect(await signer.publishedKeys()).toHaveLength(1);
  });

  it('refuses to sign while unavailable, and keeps publishing the last good keys', async () => {
    const fake = await ownFake();
    fake.addSigningVersion();
    const signer = await open(fake.signingVersion(1), fake, 500);
    const kid = await signer.signingKid();
    const published = await signer.publishedKeys();
    expect(published).toHaveLength(2);
    fake.setUnavailable(true);
    const error = await rejection(signer.sign(kid, Buffer.from('x')));
    expect((error as ApiError).code).toBe('unavailable');
    clock.advance(REFRESH_MS);
    expect(await signer.publishedKeys()).toEqual(published);
    expect(refreshErrors.map((e) => (e as ApiError).code)).toEqual(['unavailable']);
    expect(await signer.signingKid()).toBe(kid);
  });

  it('answers unavailable when nothing listens on the endpoint', async () => {
    const gone = await startFakeKms();
    await gone.stop();
    const signer = await open(gone.signingVersion(1), gone, 500);
    const error = await rejection(signer.signingKid());
    expect((error as ApiError).code).toBe('unavailable');
  });

  it('maps transient codes to unavailable and others to a plain error, naming the method', async () => {
    const failing = (error: unknown): KmsSigningClient => ({
      asymmetricSign: async () => {
        throw error;
      },
      getPublicKey: async () => {
        throw error;
      },
      listCryptoKeyVersions: async () => {
        throw error;
      },
    });
    for (const error of [{ code: 4 }, { code: 8 }, { code: 14 }, { code: 'ECONNRESET' }]) {
      const e = await rejection(kmsSigner(failing(error), kms.signingVersion(1)).signingKid());
      expect((e as ApiError).code).toBe('unavailable');
    }
    const denied = await rejection(
      kmsSigner(
        failing({ code: 7, details: 'Permission cloudkms.cryptoKeyVersions.viewPublicKey denied' }),
        kms.signingVersion(2),
      ).publishedKeys(),
    );
    expect(denied).not.toBeInstanceOf(ApiError);
    expect(denied.message).toMatch(
      /^Cloud KMS GetPublicKey failed \(7 PERMISSION_DENIED\): Permission cloudkms.cryptoKeyVersions.viewPublicKey denied \(the signing key/,
    );
  });
});

describe('rotation: the published keys follow the versions', () => {
  it('publishes a new version within refreshMs while the old one still signs', async () => {
    const fake = await ownFake();
    const v1 = fake.signingVersion(1);
    const signer = await open(v1, fake);
    const k1 = (await jwkOf(fake, v1)).kid;
    expect(kids(await signer.publishedKeys())).toEqual([k1]);

    const v2 = fake.addSigningVersion();
    const k2 = (await jwkOf(fake, v2)).kid;
    const calls = callsFrom(fake);
    clock.advance(REFRESH_MS - 1);
    expect(kids(await signer.publishedKeys())).toEqual([k1]);
    expect(calls()).toEqual([]);
    clock.advance(1);
    expect(kids(await signer.publishedKeys())).toEqual([k1, k2]);
    expect(calls()).toEqual(['ListCryptoKeyVersions', 'GetPublicKey']);

    // Version 1 still signs: the token verifies under the published set, and not under v2 alone.
    const token = await signedJwt(signer);
    const set = createLocalJWKSet({ keys: await signer.publishedKeys() });
    expect((await jwtVerify(token, set)).protectedHeader.kid).toBe(k1);
    const v2Key = await importJWK((await signer.publishedKeys())[1]!, 'ES256');
    await expect(compactVerify(token, v2Key)).rejects.toThrow(/signature verification failed/);
  });

  it('a signer on the new version publishes it first, then the old one while it is enabled', async () => {
    const fake = await ownFake();
    const v1 = fake.signingVersion(1);
    const v2 = fake.addSigningVersion();
    const before = await open(v1, fake);
    const oldToken = await signedJwt(before);

    const signer = await open(v2, fake);
    expect(kids(await signer.publishedKeys())).toEqual([
      (await jwkOf(fake, v2)).kid,
      (await jwkOf(fake, v1)).kid,
    ]);
    const set = createLocalJWKSet({ keys: await signer.publishedKeys() });
    const newToken = await signedJwt(signer);
    expect((await jwtVerify(newToken, set)).protectedHeader.kid).toBe((await jwkOf(fake, v2)).kid);
    // A token the old version signed (before the redeploy) still verifies.
    expect((await jwtVerify(oldToken, set)).protectedHeader.kid).toBe((await jwkOf(fake, v1)).kid);
  });

  it('stops publishing a disabled version at the next refresh, and publishes it again once enabled without asking its key again', async () => {
    const fake = await ownFake();
    const v1 = fake.signingVersion(1);
    const v2 = fake.addSigningVersion();
    const signer = await open(v2, fake);
    const [k1, k2] = [(await jwkOf(fake, v1)).kid, (await jwkOf(fake, v2)).kid];
    expect(kids(await signer.publishedKeys())).toEqual([k2, k1]);

    fake.disableSigningVersion(v1);
    expect(kids(await signer.publishedKeys())).toEqual([k2, k1]);
    clock.advance(REFRESH_MS);
    expect(kids(await signer.publishedKeys())).toEqual([k2]);

    const calls = callsFrom(fake);
    fake.enableSigningVersion(v1);
    clock.advance(REFRESH_MS);
    expect(kids(await signer.publishedKeys())).toEqual([k2, k1]);
    expect(calls()).toEqual(['ListCryptoKeyVersions']);
    expect(refreshErrors).toEqual([]);
  });

  it('keeps the last good list when a listing fails, and lists again soon', async () => {
    const fake = await ownFake();
    const v1 = fake.signingVersion(1);
    const v2 = fake.addSigningVersion();
    const signer = await open(v1, fake);
    const good = await signer.publishedKeys();
    expect(kids(good)).toEqual([(await jwkOf(fake, v1)).kid, (await jwkOf(fake, v2)).kid]);

    // v2 is disabled, but the listing that would say so fails: nothing good is thrown away.
    fake.disableSigningVersion(v2);
    fake.failNext('ListCryptoKeyVersions');
    clock.advance(REFRESH_MS);
    const calls = callsFrom(fake);
    expect(await signer.publishedKeys()).toEqual(good);
    expect(refreshErrors.map((e) => e.message)).toEqual([
      'Cloud KMS ListCryptoKeyVersions failed (13 INTERNAL): the fake KMS was told to fail ListCryptoKeyVersions',
    ]);
    expect(await signer.publishedKeys()).toEqual(good);
    expect(calls()).toEqual(['ListCryptoKeyVersions']);
    clock.advance(KMS_SIGNER_RETRY_MS);
    expect(kids(await signer.publishedKeys())).toEqual([(await jwkOf(fake, v1)).kid]);
    expect(calls()).toEqual(['ListCryptoKeyVersions', 'ListCryptoKeyVersions']);
  });

  it('answers just the signing key until a first listing succeeds', async () => {
    const fake = await ownFake();
    const v2 = fake.addSigningVersion();
    fake.failNext('ListCryptoKeyVersions', 1, 7);
    const signer = await open(fake.signingVersion(1), fake);
    const k1 = (await jwkOf(fake, fake.signingVersion(1))).kid;
    expect(kids(await signer.publishedKeys())).toEqual([k1]);
    expect(refreshErrors[0]?.message).toMatch(
      /ListCryptoKeyVersions failed \(7 PERMISSION_DENIED\)/,
    );
    clock.advance(KMS_SIGNER_RETRY_MS);
    expect(kids(await signer.publishedKeys())).toEqual([k1, (await jwkOf(fake, v2)).kid]);
  });

  it('leaves out a new version whose public key cannot be had, and publishes it at the next try', async () => {
    const fake = await ownFake();
    const signer = await open(fake.signingVersion(1), fake);
    await signer.signingKid();
    const v2 = fake.addSigningVersion();
    fake.corruptNextPublicKey(3, 'checksum');
    expect(await signer.publishedKeys()).toHaveLength(1);
    expect(refreshErrors[0]?.message).toMatch(
      /GetPublicKey: the response failed its integrity check/,
    );
    clock.advance(KMS_SIGNER_RETRY_MS);
    expect(kids(await signer.publishedKeys())).toEqual([
      (await jwkOf(fake, fake.signingVersion(1))).kid,
      (await jwkOf(fake, v2)).kid,
    ]);
  });

  it('lists every page (the client pages through them itself), once for concurrent callers', async () => {
    const fake = await ownFake();
    fake.setListPageSize(1);
    const v2 = fake.addSigningVersion();
    const v3 = fake.addSigningVersion();
    const signer = await open(v3, fake);
    await signer.signingKid();
    const calls = callsFrom(fake);
    const all = await Promise.all([signer.publishedKeys(), signer.publishedKeys()]);
    const expected = [
      (await jwkOf(fake, v3)).kid,
      (await jwkOf(fake, fake.signingVersion(1))).kid,
      (await jwkOf(fake, v2)).kid,
    ];
    expect(all.map(kids)).toEqual([expected, expected]);
    expect(count(calls(), 'ListCryptoKeyVersions')).toBe(3);
    expect(count(calls(), 'GetPublicKey')).toBe(2);
  });
});

describe('answers only a hand fake can give', () => {
  const version = `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/1`;
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const publicKeyOf = (name: string) => ({
    name,
    pem,
    pemCrc32c: { value: String(crc32c(Buffer.from(pem))) },
    algorithm: 12,
  });

  it('publishes only enabled P-256 versions of the same key, whatever the listing holds', async () => {
    const asked: string[] = [];
    const sibling = `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/2`;
    const client: KmsSigningClient = {
      asymmetricSign: async () => [{}],
      getPublicKey: async ({ name }) => {
        asked.push(name);
        return [publicKeyOf(name)];
      },
      listCryptoKeyVersions: async () => [
        [
          { name: version, state: 'ENABLED', algorithm: 'EC_SIGN_P256_SHA256' },
          { name: sibling, state: 1, algorithm: 12 },
          { name: sibling, state: 'ENABLED', algorithm: 'EC_SIGN_P256_SHA256' },
          { name: `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/3`, state: 'DISABLED', algorithm: 12 },
          { name: `${FAKE_KMS_SIGNING_KEY}/cryptoKeyVersions/4`, state: 'ENABLED', algorithm: 13 },
          { name: `${FAKE_KMS_KEY}/cryptoKeyVersions/1`, state: 'ENABLED', algorithm: 12 },
          { name: `${FAKE_KMS_SIGNING_KEY}x/cryptoKeyVersions/1`, state: 'ENABLED', algorithm: 12 },
          { name: null, state: 'ENABLED', algorithm: 12 },
        ],
      ],
    };
    const published = await kmsSigner(client, version, { clock }).publishedKeys();
    expect(published).toHaveLength(2);
    expect(asked).toEqual([version, sibling]);
  });

  it('refuses a signature that is not DER, and one whose checksum is missing', async () => {
    for (const signature of [Buffer.from('not a DER signature at all'), null]) {
      let signs = 0;
      const client: KmsSigningClient = {
        asymmetricSign: async () => {
          signs++;
          return [
            {
              name: version,
              signature,
              signatureCrc32c: signature === null ? null : { value: String(crc32c(signature)) },
              verifiedDigestCrc32c: true,
            },
          ];
        },
        getPublicKey: async ({ name }) => [publicKeyOf(name)],
        listCryptoKeyVersions: async () => [[]],
      };
      const signer = kmsSigner(client, version);
      const error = await rejection(signer.sign(await signer.signingKid(), Buffer.from('x')));
      expect(error.message).toMatch(
        signature === null
          ? /the signature or its checksum is missing/
          : /not a DER ECDSA signature/,
      );
      expect(signs).toBe(3);
    }
  });

  it('refuses a public key that is not P-256 under a P-256 label', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const rsaPem = rsa.export({ type: 'spki', format: 'pem' }) as string;
    const client: KmsSigningClient = {
      asymmetricSign: async () => [{}],
      getPublicKey: async ({ name }) => [
        { name, pem: rsaPem, pemCrc32c: { value: crc32c(Buffer.from(rsaPem)) }, algorithm: 12 },
      ],
      listCryptoKeyVersions: async () => [[]],
    };
    expect((await rejection(kmsSigner(client, version).signingKid())).message).toBe(
      `Cloud KMS key version ${version}: its public key is not an EC P-256 key`,
    );
  });
});
