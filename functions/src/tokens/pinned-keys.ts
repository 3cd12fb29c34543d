/**
 * The public keys that sign capability tokens, pinned in configuration
 * (`AGENTPACK_CAPABILITY_KEYS`, a JWKS document) and parsed once at start into ready
 * `KeyObject`s: importing a key costs as much as a verify, so it never happens per request.
 * A token is checked against these keys only, never against anything in the database.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  decodeBase64Url,
  ed25519PublicKeyProblem,
  isJsonObject,
  TOKEN_ALG,
  type PublicJwk,
} from '@agentpack-identity/protocol';

/** Pinned verification keys by `kid`. Built by {@link loadPinnedKeys}; never changes after. */
export type PinnedKeys = ReadonlyMap<string, KeyObject>;

/** A `kid`: printable ASCII without spaces, so it can be named in an error or a log line. */
const KID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** More keys than this in one JWKS is a configuration mistake, not a rotation. */
const MAX_PINNED_KEYS = 64;

/**
 * Parses a JWKS document into pinned Ed25519 verification keys. Throws an Error naming the
 * problem and the key (by `kid`, or by index before the `kid` is known), never key material,
 * when the document is not JSON, the set is empty or too large, a key is not an OKP/Ed25519
 * public key with a `kid`, a key carries a private part (`d`: a private key must never reach
 * the deployment, so we refuse it rather than strip it), a `kid` repeats, or `alg`/`use`/
 * `key_ops` say the key is for something else.
 *
 * @example
 * const keys = loadPinnedKeys(process.env.AGENTPACK_CAPABILITY_KEYS ?? '');
 */
export function loadPinnedKeys(jwksJson: string): PinnedKeys {
  const where = 'AGENTPACK_CAPABILITY_KEYS';
  let doc: unknown;
  try {
    doc = JSON.parse(jwksJson);
  } catch {
    throw new Error(`${where} is not valid JSON (expected a JWKS document {"keys": [...]})`);
  }
  if (!isJsonObject(doc) || !Array.isArray(doc['keys'])) {
    throw new Error(`${where} must be a JWKS document: an object with a "keys" array`);
  }
  const list: unknown[] = doc['keys'];
  if (list.length === 0) throw new Error(`${where} has no keys: pin at least one public key`);
  if (list.length > MAX_PINNED_KEYS) {
    throw new Error(`${where} has ${list.length} keys, more than ${MAX_PINNED_KEYS}`);
  }
  const keys = new Map<string, KeyObject>();
  list.forEach((jwk, index) => {
    const name = `${where}: key #${index + 1}`;
    if (!isJsonObject(jwk)) throw new Error(`${name} is not a JSON object`);
    const kid = jwk['kid'];
    if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) {
      throw new Error(`${name} has no usable "kid" (1 to 128 printable ASCII characters)`);
    }
    const named = `${where}: key "${kid}"`;
    if (Object.hasOwn(jwk, 'd')) {
      throw new Error(`${named} is a private key: pin only public keys (remove "d")`);
    }
    if (jwk['kty'] !== 'OKP' || jwk['crv'] !== 'Ed25519') {
      throw new Error(`${named} is not an Ed25519 key (need "kty": "OKP", "crv": "Ed25519")`);
    }
    if (jwk['alg'] !== undefined && jwk['alg'] !== TOKEN_ALG) {
      throw new Error(`${named} has "alg" other than "${TOKEN_ALG}"`);
    }
    if (jwk['use'] !== undefined && jwk['use'] !== 'sig') {
      throw new Error(`${named} has "use" other than "sig"`);
    }
    const ops = jwk['key_ops'];
    if (ops !== undefined && (!Array.isArray(ops) || !ops.includes('verify'))) {
      throw new Error(`${named} has "key_ops" without "verify"`);
    }
    const x = jwk['x'];
    const bytes = typeof x === 'string' ? decodeBase64Url(x) : null;
    if (typeof x !== 'string' || bytes === null) {
      throw new Error(`${named} has no "x" in canonical unpadded base64url`);
    }
    const problem = ed25519PublicKeyProblem(bytes);
    if (problem !== null) throw new Error(`${named}: its public key ${problem}`);
    if (keys.has(kid)) throw new Error(`${named} appears twice: each "kid" must be unique`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    } catch {
      throw new Error(`${named} could not be imported as an Ed25519 public key`);
    }
    keys.set(kid, key);
  });
  return keys;
}

/**
 * The public JWKS of the pinned keys, as served in the well-known document so that any JOSE
 * library can verify our tokens. Only the public members (`kty`, `crv`, `x`) come from the key
 * itself, so nothing private can slip out even if a private KeyObject were passed in.
 */
export function publicJwks(keys: PinnedKeys): { keys: PublicJwk[] } {
  const out: PublicJwk[] = [];
  for (const [kid, key] of keys) {
    const jwk = key.export({ format: 'jwk' });
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
      throw new Error(`pinned key "${kid}" is not an Ed25519 key`);
    }
    out.push({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg: TOKEN_ALG, use: 'sig' });
  }
  return { keys: out };
}
