/**
 * The online signing key held in memory: locally a key file in the data dir (created 0600 on
 * first start), on emulators and deployments without Cloud KMS the `AGENTPACK_SIGNING_KEY`
 * secret. Both are a JWKS of private P-256 keys: the first key signs, every key is published.
 * Rotation without KMS: add the new key second (published, not signing), then, once verifiers
 * have refreshed, move it first; drop the old one after the longest run-token life.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  type KeyObject,
} from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isJsonObject } from '@agentpack-identity/protocol';
import { assertPrivateFile } from '../config/owner-only-file.js';
import type { EcPublicJwk, TokenSigner } from '../ports/token-signer.js';
import { ecPublicJwk } from '../tokens/ec-keys.js';

interface SigningKey {
  privateKey: KeyObject;
  publicJwk: EcPublicJwk;
}

/** More keys than this is a mistake, not a rotation. */
const MAX_SIGNING_KEYS = 8;

/**
 * Parses a JWKS of private P-256 keys. Throws naming the problem and the key's index, never
 * key material: not JSON, no keys, a key that is not a private EC P-256 key, a private part
 * that does not match its public members, a repeated key.
 */
export function parseSigningKeys(text: string, source: string): SigningKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${source} is not valid JSON (expected a JWKS of private P-256 keys)`);
  }
  const list = isJsonObject(doc) ? doc['keys'] : undefined;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SIGNING_KEYS) {
    throw new Error(`${source} must be a JWKS {"keys": [...]} of 1 to ${MAX_SIGNING_KEYS} keys`);
  }
  const seen = new Set<string>();
  return list.map((jwk: unknown, index) => {
    const bad = (why: string): never => {
      throw new Error(`${source}: key ${index} ${why}`);
    };
    if (!isJsonObject(jwk) || jwk['kty'] !== 'EC' || jwk['crv'] !== 'P-256') {
      return bad('is not an EC P-256 key');
    }
    if (typeof jwk['d'] !== 'string') return bad('has no private part (d)');
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({
        key: { kty: 'EC', crv: 'P-256', x: jwk['x'], y: jwk['y'], d: jwk['d'] } as never,
        format: 'jwk',
      });
    } catch {
      return bad('is not a valid EC P-256 private key');
    }
    // The public members must be the private key's own: else tokens would be signed by a key
    // the published JWK cannot verify.
    const derived = ecPublicJwk(createPublicKey(privateKey));
    if (derived.x !== jwk['x'] || derived.y !== jwk['y']) {
      return bad('has public members (x, y) that are not those of its private part');
    }
    if (seen.has(derived.kid)) return bad('repeats another key');
    seen.add(derived.kid);
    return { privateKey, publicJwk: derived };
  });
}

/** A fresh JWKS text of one private P-256 key. */
export function generateSigningKeysText(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = privateKey.export({ format: 'jwk' });
  return `${JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d }] }, null, 2)}\n`;
}

/** A signer over in-memory keys: the first signs, all are published. */
export function localSigner(keys: readonly SigningKey[]): TokenSigner {
  const current = keys[0];
  if (current === undefined) throw new Error('a signer needs at least one key');
  const published = keys.map((k) => k.publicJwk);
  return {
    signingKid: async () => current.publicJwk.kid,
    async sign(kid, data) {
      if (kid !== current.publicJwk.kid) throw new Error(`key ${kid} is not the signing key`);
      return cryptoSign('sha256', data, { key: current.privateKey, dsaEncoding: 'ieee-p1363' });
    },
    publishedKeys: async () => published.map((k) => ({ ...k })),
    close: async () => {},
  };
}

/**
 * Loads the signing key file of the data dir, creating it (mode 0600, one fresh key) when it is
 * missing: a lost signing key loses nothing stored, only the verifiability of the run tokens it
 * signed. Refuses a file others can read.
 */
export function loadSigningKeyFile(file: string): SigningKey[] {
  if (!existsSync(file)) {
    writeFileSync(file, generateSigningKeysText(), { mode: 0o600, flag: 'wx' });
  }
  assertPrivateFile(file);
  return parseSigningKeys(readFileSync(file, 'utf8'), file);
}
