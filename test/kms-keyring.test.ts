/**
 * The Cloud KMS keyring with the real `@google-cloud/kms` client, over real gRPC, against the
 * fake KeyManagementService in helpers/fake-kms.ts: round trips through the envelope, AAD
 * binding, CRC32C integrity in both directions (refused when persistent, retried when not),
 * unavailability as `unavailable`, rotation; plus the odd answers only a hand fake can give.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  kmsKeyring,
  openKmsKeyring,
  type KmsClient,
  type KmsEncryptResponse,
} from '../functions/src/adapters/kms-keyring.js';
import { openValue, recordAad, sealValue } from '../functions/src/core/envelope.js';
import { ApiError } from '../functions/src/core/errors.js';
import type { Keyring } from '../functions/src/ports/keyring.js';
import { FAKE_KMS_KEY, startFakeKms, type FakeKms } from './helpers/fake-kms.js';

let kms: FakeKms;
let keyring: Keyring & { close(): Promise<void> };

beforeAll(async () => {
  kms = await startFakeKms();
  keyring = await openKmsKeyring({
    keyName: kms.keyName,
    apiEndpoint: '127.0.0.1',
    port: kms.port,
    insecure: true,
  });
});
afterAll(async () => {
  await keyring?.close();
  await kms?.stop();
});
afterEach(() => {
  kms.reset();
});

const aad = (version = 1) => recordAad('agent-a', 'openai_key', version);

/** The error `promise` rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('the KMS keyring over gRPC', () => {
  it('round-trips a value through sealValue/openValue, recording the primary version', async () => {
    const before = kms.calls.length;
    const sealed = await sealValue(keyring, 'sk-live-123', aad());
    expect(sealed.kek_ref).toBe(kms.primary());
    expect(sealed.kek_ref).toMatch(new RegExp(`^${FAKE_KMS_KEY}/cryptoKeyVersions/\\d+$`));
    expect(Buffer.from(sealed.wrapped_key, 'base64url').length).toBeGreaterThan(32);
    expect(await openValue(keyring, sealed, aad())).toBe('sk-live-123');
    expect(kms.calls.slice(before)).toEqual(['Encrypt', 'Decrypt']);
    expect(await keyring.primaryRef()).toBe(kms.primary());
  });

  it('unwraps to the same data key it wrapped', async () => {
    const dataKey = randomBytes(32);
    const { wrapped, kek_ref } = await keyring.wrap(dataKey, aad());
    expect((await keyring.unwrap(wrapped, kek_ref, aad())).equals(dataKey)).toBe(true);
  });

  it('refuses to unwrap under other associated data (another record)', async () => {
    const sealed = await sealValue(keyring, 'bound', aad(1));
    const error = await rejection(openValue(keyring, sealed, aad(2)));
    expect(error).not.toBeInstanceOf(ApiError);
    expect(error.message).toMatch(/Cloud KMS Decrypt failed \(3 INVALID_ARGUMENT\)/);
  });

  it('refuses a kek_ref that is not a version of the configured key, before calling KMS', async () => {
    const { wrapped } = await keyring.wrap(randomBytes(32), aad());
    const before = kms.calls.length;
    for (const ref of ['local:0123456789abcdef', `${FAKE_KMS_KEY}x/cryptoKeyVersions/1`]) {
      const error = await rejection(keyring.unwrap(wrapped, ref, aad()));
      expect(error.message).toMatch(/not a version of the configured key/);
    }
    expect(kms.calls.length).toBe(before);
  });

  it('keeps old versions readable after a rotation, and wraps new keys under the new primary', async () => {
    const old = await sealValue(keyring, 'before rotation', aad());
    const oldRef = old.kek_ref;
    const next = kms.rotate();
    expect(next).not.toBe(oldRef);
    expect(await keyring.primaryRef()).toBe(next);
    const fresh = await sealValue(keyring, 'after rotation', aad());
    expect(fresh.kek_ref).toBe(next);
    expect(await openValue(keyring, old, aad())).toBe('before rotation');
    expect(await openValue(keyring, fresh, aad())).toBe('after rotation');
  });
});

describe('CRC32C integrity', () => {
  const spoilings = ['checksum', 'data', 'unverified'] as const;

  it.each(spoilings)(
    'refuses an Encrypt answer that stays spoiled (%s), after a few attempts',
    async (how) => {
      kms.corruptNext(3, how);
      const before = kms.calls.length;
      const dataKey = randomBytes(32);
      const error = await rejection(keyring.wrap(dataKey, aad()));
      expect(error).not.toBeInstanceOf(ApiError);
      expect(error.message).toMatch(/Cloud KMS Encrypt: the response failed its integrity check/);
      expect(error.message).not.toContain(dataKey.toString('base64url'));
      expect(error.message).not.toContain(dataKey.toString('hex'));
      expect(kms.calls.slice(before)).toEqual(['Encrypt', 'Encrypt', 'Encrypt']);
    },
  );

  it.each(spoilings)(
    'refuses a Decrypt answer that stays spoiled (%s), never returning the key',
    async (how) => {
      const dataKey = randomBytes(32);
      const { wrapped, kek_ref } = await keyring.wrap(dataKey, aad());
      kms.corruptNext(3, how);
      const error = await rejection(keyring.unwrap(wrapped, kek_ref, aad()));
      expect(error).not.toBeInstanceOf(ApiError);
      expect(error.message).toMatch(/Cloud KMS Decrypt: the response failed its integrity check/);
      expect(error.message).not.toContain(dataKey.toString('base64url'));
      expect(error.message).not.toContain(dataKey.toString('hex'));
    },
  );

  it('discards one spoiled answer and retries, as Google advises', async () => {
    const dataKey = randomBytes(32);
    kms.corruptNext(1, 'checksum');
    let before = kms.calls.length;
    const { wrapped, kek_ref } = await keyring.wrap(dataKey, aad());
    expect(kms.calls.slice(before)).toEqual(['Encrypt', 'Encrypt']);
    kms.corruptNext(2, 'data');
    before = kms.calls.length;
    expect((await keyring.unwrap(wrapped, kek_ref, aad())).equals(dataKey)).toBe(true);
    expect(kms.calls.slice(before)).toEqual(['Decrypt', 'Decrypt', 'Decrypt']);
  });
});

describe('KMS unavailable', () => {
  const fast = async () =>
    openKmsKeyring({
      keyName: kms.keyName,
      apiEndpoint: '127.0.0.1',
      port: kms.port,
      insecure: true,
      timeoutMs: 500,
    });

  it('answers ApiError unavailable (503) for wrap, unwrap and primaryRef', async () => {
    const sealed = await sealValue(keyring, 'kept', aad());
    const short = await fast();
    try {
      kms.setUnavailable(true);
      for (const attempt of [
        () => short.wrap(randomBytes(32), aad()),
        () => short.unwrap(sealed.wrapped_key, sealed.kek_ref, aad()),
        () => short.primaryRef(),
      ]) {
        const error = await rejection(attempt());
        expect(error).toBeInstanceOf(ApiError);
        expect((error as ApiError).code).toBe('unavailable');
        expect((error as ApiError).status).toBe(503);
        expect(error.message).toBe('the key service is unavailable');
      }
      kms.setUnavailable(false);
      expect(await openValue(short, sealed, aad())).toBe('kept');
    } finally {
      await short.close();
    }
  });

  it('answers unavailable when nothing listens on the endpoint', async () => {
    const gone = await startFakeKms();
    await gone.stop();
    const short = await openKmsKeyring({
      keyName: gone.keyName,
      apiEndpoint: '127.0.0.1',
      port: gone.port,
      insecure: true,
      timeoutMs: 500,
    });
    try {
      const error = await rejection(short.wrap(randomBytes(32), aad()));
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).code).toBe('unavailable');
    } finally {
      await short.close();
    }
  });
});

describe('answers only a hand fake can give', () => {
  const answer = (response: KmsEncryptResponse): KmsClient => ({
    encrypt: async () => [response],
    decrypt: async () => [{}],
    getCryptoKey: async () => [{ primary: null }],
  });

  it('refuses an Encrypt answered by a version of another key', async () => {
    const ciphertext = randomBytes(40);
    const { crc32c } = await import('../functions/src/adapters/crc32c.js');
    const ring = kmsKeyring(
      answer({
        name: 'projects/p/locations/global/keyRings/r/cryptoKeys/other/cryptoKeyVersions/1',
        ciphertext,
        ciphertextCrc32c: { value: String(crc32c(ciphertext)) },
        verifiedPlaintextCrc32c: true,
        verifiedAdditionalAuthenticatedDataCrc32c: true,
      }),
      FAKE_KMS_KEY,
    );
    const error = await rejection(ring.wrap(randomBytes(32), aad()));
    expect(error.message).toMatch(/answered for another key/);
  });

  it('refuses a key with no primary version', async () => {
    const ring = kmsKeyring(answer({}), FAKE_KMS_KEY);
    expect((await rejection(ring.primaryRef())).message).toMatch(/has no primary version/);
  });

  it('maps transient gRPC codes and network errors to unavailable, others to a plain error', async () => {
    const failing = (error: unknown): KmsClient => ({
      encrypt: async () => {
        throw error;
      },
      decrypt: async () => {
        throw error;
      },
      getCryptoKey: async () => {
        throw error;
      },
    });
    for (const error of [{ code: 4 }, { code: 8 }, { code: 14 }, { code: 'ECONNREFUSED' }]) {
      const e = await rejection(kmsKeyring(failing(error), FAKE_KMS_KEY).primaryRef());
      expect((e as ApiError).code).toBe('unavailable');
    }
    const denied = await rejection(
      kmsKeyring(
        failing({ code: 7, details: 'Permission cloudkms.cryptoKeyVersions.useToEncrypt denied' }),
        FAKE_KMS_KEY,
      ).wrap(randomBytes(32), aad()),
    );
    expect(denied).not.toBeInstanceOf(ApiError);
    expect(denied.message).toBe(
      'Cloud KMS Encrypt failed (7 PERMISSION_DENIED): Permission cloudkms.cryptoKeyVersions.useToEncrypt denied',
    );
  });

  it('refuses a key name that is not a CryptoKey', () => {
    for (const bad of [
      `${FAKE_KMS_KEY}/cryptoKeyVersions/1`,
      'projects/p/locations/global/keyRings/r',
      '',
    ]) {
      expect(() => kmsKeyring(answer({}), bad)).toThrow(/must be a CryptoKey name/);
    }
  });
});
