/**
 * Configuration of the KMS keyring: `AGENTPACK_KMS_KEY` (checked at start), the endpoint and
 * insecure options (loopback only), one source of the KEK at a time; and `openKeyring` choosing
 * Cloud KMS from the environment, reaching the fake KMS over gRPC.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKeyring } from '../functions/src/app.js';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { loadConfig, loadStorageConfig } from '../functions/src/config/config.js';
import { openValue, recordAad, sealValue } from '../functions/src/core/envelope.js';
import { FAKE_KMS_KEY, startFakeKms, type FakeKms } from './helpers/fake-kms.js';
import { BRIDGE_KEY } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

const KEY = 'projects/my-project/locations/europe-west1/keyRings/agentpack/cryptoKeys/secrets';

describe('AGENTPACK_KMS_KEY and friends', () => {
  it('selects Cloud KMS with the real endpoint by default', () => {
    expect(loadStorageConfig({ AGENTPACK_KMS_KEY: KEY }, { store: 'firestore' })).toMatchObject({
      store: 'firestore',
      dataDir: './.data',
      secretsKek: null,
      kms: { keyName: KEY, endpoint: null, insecure: false },
    });
    expect(
      loadConfig({ AGENTPACK_KMS_KEY: KEY, AGENTPACK_BRIDGE_KEYS: BRIDGE_KEY }, { store: 'sqlite' })
        .kms,
    ).toEqual({ keyName: KEY, endpoint: null, insecure: false });
    expect(loadStorageConfig({}, { store: 'sqlite' }).kms).toBeNull();
    expect(loadStorageConfig({ AGENTPACK_KMS_KEY: '  ' }, { store: 'sqlite' }).kms).toBeNull();
  });

  it('takes an endpoint, and plaintext gRPC only to loopback', () => {
    const cfg = (env: Record<string, string>) =>
      loadStorageConfig({ AGENTPACK_KMS_KEY: KEY, ...env }, { store: 'sqlite' }).kms;
    expect(cfg({ AGENTPACK_KMS_ENDPOINT: 'kms.internal.example:443' })).toEqual({
      keyName: KEY,
      endpoint: { host: 'kms.internal.example', port: 443 },
      insecure: false,
    });
    expect(
      cfg({ AGENTPACK_KMS_ENDPOINT: '127.0.0.1:9010', AGENTPACK_KMS_INSECURE: 'true' }),
    ).toEqual({ keyName: KEY, endpoint: { host: '127.0.0.1', port: 9010 }, insecure: true });
    expect(cfg({ AGENTPACK_KMS_ENDPOINT: '[::1]:9010', AGENTPACK_KMS_INSECURE: 'true' })).toEqual({
      keyName: KEY,
      endpoint: { host: '[::1]', port: 9010 },
      insecure: true,
    });
    expect(() =>
      cfg({ AGENTPACK_KMS_ENDPOINT: 'kms.example:9010', AGENTPACK_KMS_INSECURE: 'true' }),
    ).toThrow(/only with a loopback AGENTPACK_KMS_ENDPOINT/);
    expect(() => cfg({ AGENTPACK_KMS_INSECURE: 'true' })).toThrow(/only with a loopback/);
    expect(() => cfg({ AGENTPACK_KMS_INSECURE: 'yes' })).toThrow(/must be "true" or "false"/);
    for (const bad of ['localhost', 'localhost:', ':9010', 'localhost:0', 'localhost:70000']) {
      expect(() => cfg({ AGENTPACK_KMS_ENDPOINT: bad })).toThrow(/must be HOST:PORT/);
    }
  });

  it('refuses a malformed key name at start, naming the variable', () => {
    const load = (key: string) =>
      loadStorageConfig({ AGENTPACK_KMS_KEY: key }, { store: 'firestore' });
    for (const bad of [
      'my-key',
      'projects/p/locations/global/keyRings/r',
      `${KEY}/`,
      `${KEY} `.repeat(2),
      'projects/P/locations/global/keyRings/r/cryptoKeys/k',
      'projects/p/locations/global/keyRings/r/cryptoKeys/k/extra',
    ]) {
      expect(() => load(bad), bad).toThrow(/^AGENTPACK_KMS_KEY must be projects\//);
    }
    expect(() => load(`${KEY}/cryptoKeyVersions/3`)).toThrow(
      /must name the CryptoKey, not one of its versions/,
    );
  });

  it('refuses two sources of the key-encryption key, and KMS options without a key', () => {
    expect(() =>
      loadStorageConfig(
        { AGENTPACK_KMS_KEY: KEY, AGENTPACK_SECRETS_KEK: 'x'.repeat(43) },
        { store: 'firestore' },
      ),
    ).toThrow('set AGENTPACK_KMS_KEY or AGENTPACK_SECRETS_KEK, not both');
    expect(() =>
      loadStorageConfig({ AGENTPACK_KMS_ENDPOINT: '127.0.0.1:1' }, { store: 'sqlite' }),
    ).toThrow(/need AGENTPACK_KMS_KEY/);
  });

  it('needs no bridge key for the store and keyring part', () => {
    expect(() => loadConfig({}, { store: 'sqlite' })).toThrow(/AGENTPACK_BRIDGE_KEYS/);
    expect(loadStorageConfig({ AGENTPACK_DATA_DIR: '/tmp/x' }, { store: 'sqlite' })).toMatchObject({
      store: 'sqlite',
      dataDir: '/tmp/x',
      secretsKek: null,
      kms: null,
    });
  });
});

describe('openKeyring with AGENTPACK_KMS_KEY', () => {
  let kms: FakeKms;
  const tmp = tempDir('agentpack-kms-config-');
  beforeAll(async () => {
    kms = await startFakeKms();
  });
  afterAll(async () => {
    await kms?.stop();
    tmp.remove();
  });

  it('opens the Cloud KMS keyring from the environment, and no key file', async () => {
    const config = loadStorageConfig(
      {
        AGENTPACK_DATA_DIR: tmp.dir,
        AGENTPACK_KMS_KEY: FAKE_KMS_KEY,
        AGENTPACK_KMS_ENDPOINT: `127.0.0.1:${kms.port}`,
        AGENTPACK_KMS_INSECURE: 'true',
      },
      { store: 'sqlite' },
    );
    const store = openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') });
    const keyring = await openKeyring(config, store);
    try {
      const aad = recordAad('agent-a', 'k', 1);
      const sealed = await sealValue(keyring, 'through the environment', aad);
      expect(sealed.kek_ref).toBe(kms.primary());
      expect(await openValue(keyring, sealed, aad)).toBe('through the environment');
      expect(kms.calls).toEqual(['Encrypt', 'Decrypt']);
      const { existsSync } = await import('node:fs');
      expect(existsSync(join(tmp.dir, 'secrets-kek'))).toBe(false);
    } finally {
      await keyring.close();
      await store.close();
    }
  });

  it('requires a KMS key (or a KEK) with the firestore store', async () => {
    const config = loadStorageConfig({}, { store: 'firestore' });
    await expect(openKeyring(config, {} as never)).rejects.toThrow(
      'AGENTPACK_KMS_KEY (or AGENTPACK_SECRETS_KEK) is required with the firestore store',
    );
  });
});
