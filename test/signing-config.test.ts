/**
 * Configuration of the online signing key and the issuer URL, and the local signer's key
 * file: every mistake stops the start with a message naming the variable, never a key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkIssuerUrl, loadConfig } from '../functions/src/config/config.js';
import {
  generateSigningKeysText,
  loadSigningKeyFile,
  localSigner,
  parseSigningKeys,
} from '../functions/src/adapters/local-signer.js';
import { tempDir } from './helpers/temp-dir.js';

const FIRESTORE_BASE = {
  AGENTPACK_BRIDGE_KEYS: 'bridge-key-0123456789abcdefghijklmnopqrstu',
  AGENTPACK_SECRETS_KEK: 'A'.repeat(43),
  AGENTPACK_DIGEST_KEY: 'A'.repeat(43),
};
const VERSION = 'projects/p/locations/global/keyRings/r/cryptoKeys/run-tokens/cryptoKeyVersions/3';

describe('AGENTPACK_ISSUER_URL', () => {
  it('accepts https and loopback http, canonical and without a trailing slash', () => {
    for (const ok of [
      'https://identity.example.com',
      'https://identity-abc-uc.a.run.app',
      'https://example.com/tenant/identity',
      'https://example.com:8443',
      'http://127.0.0.1:8787',
      'http://localhost:8787',
      'http://[::1]:8787',
    ]) {
      expect(checkIssuerUrl(ok)).toBe(ok);
    }
    for (const bad of [
      'http://identity.example.com',
      'http://0.0.0.0:8787',
      'https://example.com/',
      'https://Example.com',
      'https://example.com?x=1',
      'https://example.com#f',
      'https://user:pw@example.com',
      'ftp://example.com',
      'example.com',
      `https://example.com/${'x'.repeat(200)}`,
    ]) {
      expect(() => checkIssuerUrl(bad), bad).toThrow(/AGENTPACK_ISSUER_URL/);
    }
  });

  it('is required with the firestore store, and defaults locally to HOST and PORT', () => {
    expect(() =>
      loadConfig(
        { ...FIRESTORE_BASE, AGENTPACK_SIGNING_KEY: generateSigningKeysText() },
        { store: 'firestore' },
      ),
    ).toThrow(/AGENTPACK_ISSUER_URL is required/);
    const local = loadConfig(
      { AGENTPACK_BRIDGE_KEYS: FIRESTORE_BASE.AGENTPACK_BRIDGE_KEYS, PORT: '9999' },
      { store: 'sqlite' },
    );
    expect(local.issuerUrl).toBe('http://127.0.0.1:9999');
    expect(local.signing).toEqual({ kind: 'file' });
  });
});

describe('the signing key configuration', () => {
  const firestore = (env: Record<string, string>) =>
    loadConfig(
      { ...FIRESTORE_BASE, AGENTPACK_ISSUER_URL: 'https://id.example.com', ...env },
      { store: 'firestore' },
    );

  it('takes a KMS CryptoKeyVersion (sharing the KMS endpoint settings) or a JWKS, never both, one required with firestore', () => {
    expect(firestore({ AGENTPACK_KMS_SIGNING_KEY: VERSION }).signing).toEqual({
      kind: 'kms',
      versionName: VERSION,
      endpoint: null,
      insecure: false,
    });
    expect(
      firestore({
        AGENTPACK_KMS_SIGNING_KEY: VERSION,
        AGENTPACK_KMS_ENDPOINT: '127.0.0.1:7000',
        AGENTPACK_KMS_INSECURE: 'true',
      }).signing,
    ).toMatchObject({ kind: 'kms', endpoint: { host: '127.0.0.1', port: 7000 }, insecure: true });
    const keys = generateSigningKeysText();
    expect(firestore({ AGENTPACK_SIGNING_KEY: keys }).signing).toEqual({ kind: 'env', keys });
    expect(() => firestore({})).toThrow(
      /AGENTPACK_KMS_SIGNING_KEY \(or AGENTPACK_SIGNING_KEY\) is required/,
    );
    expect(() =>
      firestore({ AGENTPACK_KMS_SIGNING_KEY: VERSION, AGENTPACK_SIGNING_KEY: keys }),
    ).toThrow(/not both/);
    for (const bad of [
      'projects/p/locations/global/keyRings/r/cryptoKeys/run-tokens',
      `${VERSION}/x`,
      VERSION.replace('/3', '/0'),
    ]) {
      expect(() => firestore({ AGENTPACK_KMS_SIGNING_KEY: bad }), bad).toThrow(/CryptoKeyVersion/);
    }
    expect(() =>
      firestore({
        AGENTPACK_KMS_SIGNING_KEY: VERSION,
        AGENTPACK_KMS_INSECURE: 'true',
        AGENTPACK_KMS_ENDPOINT: 'kms.example.com:443',
      }),
    ).toThrow(/loopback/);
  });
});

describe('the local signing keys', () => {
  let tmp: ReturnType<typeof tempDir> | undefined;
  afterEach(() => tmp?.remove());

  it('creates the key file 0600 once and reads the same key back', async () => {
    tmp = tempDir();
    const file = join(tmp.dir, 'run-token-signing-key.jwks');
    const first = localSigner(loadSigningKeyFile(file));
    const again = localSigner(loadSigningKeyFile(file));
    expect(await again.signingKid()).toBe(await first.signingKid());
    chmodSync(file, 0o644);
    expect(() => loadSigningKeyFile(file)).toThrow(/readable by others/);
  });

  it('signs with the first key and publishes all (rotation without KMS)', async () => {
    const a = JSON.parse(generateSigningKeysText()).keys[0];
    const b = JSON.parse(generateSigningKeysText()).keys[0];
    const signer = localSigner(parseSigningKeys(JSON.stringify({ keys: [a, b] }), 'T'));
    const published = await signer.publishedKeys();
    expect(published).toHaveLength(2);
    expect(published[0]!.kid).toBe(await signer.signingKid());
    expect(JSON.stringify(published)).not.toContain(a.d);
    await expect(signer.sign(published[1]!.kid, Buffer.from('x'))).rejects.toThrow(
      /not the signing key/,
    );
    expect((await signer.sign(published[0]!.kid, Buffer.from('x'))).length).toBe(64);
  });

  it('refuses what is not a set of private P-256 keys, naming the key, never its material', () => {
    const good = JSON.parse(generateSigningKeysText()).keys[0];
    const other = JSON.parse(generateSigningKeysText()).keys[0];
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({
      format: 'jwk',
    });
    const cases: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['{"keys":[]}', /1 to 8 keys/],
      [JSON.stringify({ keys: [{ ...good, d: undefined }] }), /no private part/],
      [JSON.stringify({ keys: [p384] }), /not an EC P-256 key/],
      [
        JSON.stringify({ keys: [{ ...good, x: other.x, y: other.y }] }),
        /public members|not a valid/,
      ],
      [JSON.stringify({ keys: [{ ...good, d: 'AAAA' }] }), /not a valid/],
      [JSON.stringify({ keys: [good, good] }), /repeats/],
    ];
    for (const [text, message] of cases) {
      let error: Error | undefined;
      try {
        parseSigningKeys(text, 'AGENTPACK_SIGNING_KEY');
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message, text.slice(0, 40)).toMatch(message);
      expect(error?.message).toMatch(/^AGENTPACK_SIGNING_KEY/);
      expect(error?.message).not.toContain(good.d);
    }
  });
});
