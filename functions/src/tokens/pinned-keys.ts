/**
 * The public keys that sign capability tokens, pinned in configuration
 * (`AGENTPACK_CAPABILITY_KEYS`, a JWKS document) and parsed once at start into ready
 * `KeyObject`s: importing a key costs as much as a verify, so it never happens per request.
 * A token is checked against these keys only, never against anything in the database.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { decodeBase64Url, isJsonObject, TOKEN_ALG, type PublicJwk } from './format.js';

/** Pinned verification keys by `kid`. Built by {@link loadPinnedKeys}; never changes after. */
export type PinnedKeys = ReadonlyMap<string, KeyObject>;

/** A `kid`: printable ASCII without spaces, so it can be named in an error or a log line. */
const KID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** More keys than this in one JWKS is a configuration mistake, not a rotation. */
const MAX_PINNED_KEYS = 64;

const P_MINUS_19_LOW_BYTE = 0xed; // 2^255 - 19 ends (little-endian) in ed ff .. ff 7f

/**
 * Encodings of the Ed25519 points of small order (the identity, order 2, 4 and 8, with both
 * sign bits), as libsodium blocks them. Policy: a pinned key of small order is refused because
 * with it a signature can be forged without any private key (S·B = R + k·A holds for many R, S
 * whatever the message).
 */
const SMALL_ORDER_KEYS = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
]);

/**
 * Why the 32 bytes of an Ed25519 public key are unusable, or null when they are fine: a
 * non-canonical encoding (y ≥ 2^255 - 19, so the same point has two spellings) or a point of
 * small order (see {@link SMALL_ORDER_KEYS}).
 */
export function ed25519PublicKeyProblem(bytes: Uint8Array): string | null {
  if (bytes.length !== 32) return 'is not 32 bytes';
  if (SMALL_ORDER_KEYS.has(Buffer.from(bytes).toString('hex'))) return 'is a small-order point';
  let high = (bytes[31]! & 0x7f) === 0x7f;
  for (let i = 30; high && i >= 1; i--) high = bytes[i] === 0xff;
  if (high && bytes[0]! >= P_MINUS_19_LOW_BYTE) return 'is not canonically encoded';
  return null;
}

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
