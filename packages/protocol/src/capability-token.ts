/**
 * Capability tokens: the wire format shared by the signer (operator tooling) and the verifier
 * (the service) — a compact JWS whose header is `{"alg":"EdDSA","typ":"agentpack-cap+jwt","kid":...}`
 * and whose payload is the {@link CapabilityClaims} set — and minting, for the operator tooling
 * only: the private key lives with the operator (a JWK file) and never enters the deployment,
 * which holds only the public half. Ed25519 only: one algorithm means no algorithm
 * negotiation, so no algorithm confusion.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign as cryptoSign,
  type KeyObject,
} from 'node:crypto';
import { decodeBase64Url } from './base64url.js';
import { ed25519PrivateKeyObject } from './device-identity.js';
import { AGENT_ID_PATTERN } from './grammar.js';
import { AGENT_LIST_RPCS, DELEGABLE_RPCS, parseScopeEntry, TOKEN_ONLY_RPCS } from './scope.js';

/** The only `alg` we sign with or accept (RFC 8037: EdDSA over Ed25519). */
export const TOKEN_ALG = 'EdDSA';

/** The explicit type (RFC 8725 §3.11): a capability token cannot pass for another JWT. */
export const TOKEN_TYP = 'agentpack-cap+jwt';

/** The longest token (in characters) the verifier looks at; anything longer is refused unread. */
export const MAX_TOKEN_LENGTH = 8192;

/** The longest `jti` accepted: it lands in the token ledger and in audit rows. */
export const MAX_JTI_LENGTH = 128;

/** Default for `AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`. */
export const DEFAULT_MAX_TTL_SECONDS = 900;

/**
 * The ceiling for any token lifetime, and so for `AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`: a
 * capability token is checked without any read, so it can only end by expiring; a day is the
 * most we let a leaked one live.
 */
export const MAX_TTL_CEILING_SECONDS = 86_400;

/** The verified claims of a capability token (RFC 7519 names; `scope` is our list). */
export interface CapabilityClaims {
  iss: string;
  aud: string | string[];
  /** The agent id the token acts for. */
  sub: string;
  /** RPC names, each optionally narrowed to one resource (see scope.ts). */
  scope: string[];
  /** Issued at, seconds since the Unix epoch. */
  iat: number;
  /** Expiry, seconds since the Unix epoch. */
  exp: number;
  /** The token's unique id, as registered in the ledger. */
  jti: string;
  /** Not before, seconds since the Unix epoch. */
  nbf?: number;
}

/** An Ed25519 public key as a JWK (RFC 8037), as published in the well-known document. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** An Ed25519 private key as a JWK: the public members plus the 32-byte seed `d`. */
export interface PrivateJwk extends PublicJwk {
  d: string;
}

/** Encodes UTF-8 JSON of `value` as unpadded base64url. */
export function encodeJsonSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * RPCs a capability token may grant: the delegable agent RPCs, the token-only ones and the
 * agent's own lists.
 */
export const GRANTABLE_RPCS: readonly string[] = [
  ...DELEGABLE_RPCS,
  ...TOKEN_ONLY_RPCS,
  ...AGENT_LIST_RPCS,
];

const KID_PATTERN = /^[\x21-\x7e]{1,128}$/;

export interface MintOptions {
  /** The operator's Ed25519 private JWK, as written by {@link generateSigningKey}. */
  privateJwk: unknown;
  /** The agent id the token acts for. */
  sub: string;
  /** RPC names (each optionally `rpc:resource`), all from {@link GRANTABLE_RPCS}. */
  scope: readonly string[];
  /** Lifetime in seconds, from 1 to a day; the service also caps it by its own setting. */
  ttlSeconds: number;
  issuer: string;
  audience: string | readonly string[];
  /** Milliseconds since the Unix epoch; `iat` is its whole second. */
  nowMs: number;
  /** Default: 128 random bits, base64url. */
  jti?: string;
}

export interface MintedToken {
  /** The compact JWS: a bearer credential, to hand to the agent and nowhere else. */
  token: string;
  claims: CapabilityClaims;
  /** The `kid` that signed it. */
  kid: string;
}

/**
 * The RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256) of the JSON of its
 * required members in lexicographic order. Stable, so it makes a good default `kid`.
 */
export function jwkThumbprint(x: string): string {
  const canonical = JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x });
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

/**
 * A fresh Ed25519 signing key as a private and a public JWK (RFC 8037), both with `kid`
 * (default: the RFC 7638 thumbprint), `alg: EdDSA` and `use: sig`. The public JWK goes into
 * `AGENTPACK_CAPABILITY_KEYS`; the private one stays with the operator.
 */
export function generateSigningKey(kid?: string): { privateJwk: PrivateJwk; publicJwk: PublicJwk } {
  if (kid !== undefined && !KID_PATTERN.test(kid)) {
    throw new Error('kid must be 1 to 128 printable ASCII characters without spaces');
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const x = jwk.x!;
  const publicJwk: PublicJwk = {
    kty: 'OKP',
    crv: 'Ed25519',
    x,
    kid: kid ?? jwkThumbprint(x),
    alg: TOKEN_ALG,
    use: 'sig',
  };
  return { privateJwk: { ...publicJwk, d: jwk.d! }, publicJwk };
}

/**
 * Imports an Ed25519 private JWK, checking that it is one (OKP/Ed25519 with 32-byte `d` and
 * `x`) and that `x` really is the public half of `d` (a mismatch would sign tokens that the
 * published key cannot verify). Errors never contain key material.
 */
export function importSigningKey(privateJwk: unknown): { key: KeyObject; kid: string; x: string } {
  if (!isJsonObject(privateJwk)) throw new Error('the signing key is not a JWK object');
  const { kty, crv, d, x, kid } = privateJwk;
  if (kty !== 'OKP' || crv !== 'Ed25519') {
    throw new Error('the signing key is not an Ed25519 JWK (need "kty": "OKP", "crv": "Ed25519")');
  }
  const seed = decodeBase64Url(d, 32, 32);
  if (seed === null) {
    throw new Error('the signing key has no private part "d" (32 bytes, base64url)');
  }
  if (typeof x !== 'string' || decodeBase64Url(x)?.length !== 32) {
    throw new Error('the signing key has no public part "x" (32 bytes, base64url)');
  }
  if (kid !== undefined && (typeof kid !== 'string' || !KID_PATTERN.test(kid))) {
    throw new Error('the signing key\'s "kid" must be 1 to 128 printable ASCII characters');
  }
  let key: KeyObject;
  try {
    // From the seed alone, then compared: some OpenSSL builds refuse a JWK whose `x` does not
    // match `d` at import, others accept it; either way the answer must be the same refusal.
    key = ed25519PrivateKeyObject(seed);
  } catch {
    throw new Error('the signing key could not be imported as an Ed25519 private key');
  } finally {
    seed.fill(0);
  }
  if (createPublicKey(key).export({ format: 'jwk' }).x !== x) {
    throw new Error('the signing key\'s "x" is not the public half of its "d"');
  }
  return { key, kid: kid ?? jwkThumbprint(x), x };
}

function checkScope(scope: readonly string[]): string[] {
  if (!Array.isArray(scope) || scope.length === 0) throw new Error('scope must not be empty');
  for (const text of scope) {
    const entry = typeof text === 'string' ? parseScopeEntry(text) : null;
    if (entry === null) throw new Error(`scope entry "${String(text)}" is not rpc[:resource]`);
    if (!GRANTABLE_RPCS.includes(entry.rpc)) {
      throw new Error(
        `scope entry "${text}": ${entry.rpc} cannot be granted by a token (allowed: ${GRANTABLE_RPCS.join(', ')})`,
      );
    }
  }
  return [...scope];
}

/**
 * Signs a capability token: header `{alg: EdDSA, typ: agentpack-cap+jwt, kid}`, claims `iss`,
 * `aud`, `sub`, `scope`, `iat` (the whole second of `nowMs`), `exp` (`iat + ttlSeconds`) and
 * `jti`. Every input is checked first (agent id grammar, scope grammar and grantable RPCs, a
 * lifetime from 1 s to a day), so a token this returns is one the service can accept.
 *
 * @example
 * const { token } = mintCapabilityToken({ privateJwk, sub: 'agent-a',
 *   scope: ['secrets/get:openai_key'], ttlSeconds: 300, issuer: 'agentpack-identity',
 *   audience: 'agentpack', nowMs: Date.now() });
 */
export function mintCapabilityToken(options: MintOptions): MintedToken {
  const { key, kid } = importSigningKey(options.privateJwk);
  const { sub, ttlSeconds, issuer, audience, nowMs } = options;
  if (typeof sub !== 'string' || !AGENT_ID_PATTERN.test(sub)) {
    throw new Error('sub must be an agent id (3 to 63 of a-z, 0-9, _ and -)');
  }
  const scope = checkScope(options.scope);
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_CEILING_SECONDS) {
    throw new Error(`ttl must be a whole number of seconds from 1 to ${MAX_TTL_CEILING_SECONDS}`);
  }
  if (typeof issuer !== 'string' || issuer.length === 0) throw new Error('issuer is empty');
  const aud = typeof audience === 'string' ? audience : [...audience];
  if (
    typeof aud === 'string'
      ? aud.length === 0
      : aud.length === 0 || aud.some((a) => typeof a !== 'string' || a.length === 0)
  ) {
    throw new Error('audience is empty');
  }
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs) || nowMs < 0) {
    throw new Error('nowMs must be a time in milliseconds since the Unix epoch');
  }
  const jti = options.jti ?? randomBytes(16).toString('base64url');
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
    throw new Error(`jti must be 1 to ${MAX_JTI_LENGTH} characters`);
  }
  const iat = Math.floor(nowMs / 1000);
  const claims: CapabilityClaims = {
    iss: issuer,
    aud,
    sub,
    scope,
    iat,
    exp: iat + ttlSeconds,
    jti,
  };
  const signingInput = `${encodeJsonSegment({ alg: TOKEN_ALG, typ: TOKEN_TYP, kid })}.${encodeJsonSegment(claims)}`;
  const signature = cryptoSign(null, Buffer.from(signingInput, 'latin1'), key);
  return { token: `${signingInput}.${signature.toString('base64url')}`, claims, kid };
}
