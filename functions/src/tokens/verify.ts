/**
 * Capability token verification: pure, synchronous, node:crypto only, no database read.
 *
 * The checks run in a fixed order, as panva/jose's `jwtVerify` does (structure and lengths,
 * then the protected header, then the signature, and only then the claims, which are parsed
 * only once they are known to be ours), and each failure maps to one reason of the closed
 * union {@link TokenRefusal}. Nothing here throws on any token string: a refusal is a value.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AGENT_ID_PATTERN, parseScopeEntry } from '@agentpack-identity/protocol';
import {
  decodeBase64Url,
  DEFAULT_MAX_TTL_SECONDS,
  isJsonObject,
  MAX_JTI_LENGTH,
  MAX_TOKEN_LENGTH,
  MAX_TTL_CEILING_SECONDS,
  TOKEN_ALG,
  TOKEN_TYP,
  type CapabilityClaims,
} from '@agentpack-identity/protocol';
import type { PinnedKeys } from './pinned-keys.js';

export type { CapabilityClaims } from '@agentpack-identity/protocol';

/** Every reason a token can be refused for, in the order the checks run. */
export const TOKEN_REFUSALS = [
  'malformed',
  'bad_encoding',
  'unsupported_alg',
  'bad_typ',
  'bad_header',
  'unknown_kid',
  'crit',
  'bad_signature',
  'bad_claims',
  'wrong_issuer',
  'wrong_audience',
  'expired',
  'not_yet_valid',
  'lifetime_too_long',
] as const;

/** Why a token was refused: a closed set, like jose's `JOSEErrorCode`. */
export type TokenRefusal = (typeof TOKEN_REFUSALS)[number];

/**
 * A sentence per refusal, safe to show to the token's holder (it names no key and no claim
 * value), for the `message` of the 401.
 */
export const TOKEN_REFUSAL_MESSAGES: Readonly<Record<TokenRefusal, string>> = {
  malformed: 'the capability token is not a compact JWS of the expected shape',
  bad_encoding: 'the capability token is not canonical unpadded base64url',
  unsupported_alg: `the capability token must be signed with ${TOKEN_ALG} (Ed25519)`,
  bad_typ: `the capability token's typ must be ${TOKEN_TYP}`,
  bad_header: "the capability token's header is not acceptable",
  unknown_kid: 'the capability token is signed by a key that is not pinned here',
  crit: 'the capability token has critical header extensions, none of which are supported',
  bad_signature: "the capability token's signature does not verify",
  bad_claims: "the capability token's claims are missing or of the wrong type",
  wrong_issuer: 'the capability token was issued by another issuer',
  wrong_audience: 'the capability token is meant for another audience',
  expired: 'the capability token has expired',
  not_yet_valid: 'the capability token is not valid yet',
  lifetime_too_long: "the capability token's lifetime is longer than allowed",
};

/**
 * The outcome of a verification: for an accepted token its claims (frozen) and the `kid` of the
 * pinned key that verified it.
 */
export type TokenVerdict =
  { ok: true; claims: CapabilityClaims; kid: string } | { ok: false; reason: TokenRefusal };

export interface TokenVerifierOptions {
  /** The pinned public keys, from {@link loadPinnedKeys}. */
  keys: PinnedKeys;
  /** The only accepted `iss`. */
  issuer: string;
  /** `aud` must equal this, or be a list that contains it. */
  audience: string;
  /** The longest accepted lifetime, `exp - iat`. */
  maxTtlSeconds: number;
  /** Tolerated clock difference for `exp`, `nbf` and `iat`; default 30. */
  skewSeconds?: number;
  /**
   * How many accepted tokens to remember (by their exact text) so that a token presented again
   * skips the signature check; `exp`, `nbf` and `iat` are still checked on every hit. Default
   * {@link DEFAULT_CACHE_SIZE}; 0 turns the cache off. Oldest entries are evicted first.
   */
  cacheSize?: number;
}

export interface TokenVerifier {
  /**
   * Verifies `token` at `nowMs` (milliseconds since the Unix epoch; injected so tests can
   * freeze time). Never throws on any token string; throws a RangeError only when `nowMs` is
   * not a finite number (a bug in the caller, not bad input).
   */
  verify(token: string, nowMs: number): TokenVerdict;
}

/** Default clock skew tolerance, as the API documents. */
export const DEFAULT_SKEW_SECONDS = 30;

/** Largest accepted skew: more would make `exp` meaningless for short tokens. */
const MAX_SKEW_SECONDS = 300;

/** Default number of cached accepted tokens. */
export const DEFAULT_CACHE_SIZE = 10_000;

/**
 * Tokens longer than this are verified but not cached, so the cache's memory stays bounded by
 * about `cacheSize` × 2 KiB whatever the operator mints (our tokens are about 400 characters).
 */
const MAX_CACHED_TOKEN_LENGTH = 2048;

/** An Ed25519 signature is always 64 bytes (R ‖ S). */
const SIGNATURE_LENGTH = 64;

/** A list longer than this is not a capability, it is a mistake. */
const MAX_SCOPE_ENTRIES = 64;

// One frozen refusal object per reason: refusing allocates nothing.
const REFUSED = Object.fromEntries(
  TOKEN_REFUSALS.map((reason) => [reason, Object.freeze({ ok: false as const, reason })]),
) as unknown as { readonly [R in TokenRefusal]: { ok: false; reason: R } };

// Policy: invalid UTF-8 and a byte order mark are refused rather than repaired, so the JSON
// we act on is exactly the bytes that were signed.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The JSON of a decoded JWS segment, or undefined when it is not strict UTF-8 JSON. */
export function parseJsonSegment(bytes: Buffer): unknown {
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    return undefined;
  }
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/** The claims, typed and copied into a frozen object, or null when any is missing or wrong. */
function readClaims(payload: Record<string, unknown>): CapabilityClaims | null {
  const { iss, aud, sub, scope, iat, exp, jti, nbf } = payload;
  if (!isNonEmptyString(iss)) return null;
  let audience: string | string[];
  if (isNonEmptyString(aud)) audience = aud;
  else if (Array.isArray(aud) && aud.length > 0 && aud.every(isNonEmptyString))
    audience = Object.freeze([...aud]) as string[];
  else return null;
  if (typeof sub !== 'string' || !AGENT_ID_PATTERN.test(sub)) return null;
  if (!Array.isArray(scope) || scope.length === 0 || scope.length > MAX_SCOPE_ENTRIES) return null;
  for (const entry of scope) {
    if (typeof entry !== 'string' || parseScopeEntry(entry) === null) return null;
  }
  if (!isNonEmptyString(jti) || jti.length > MAX_JTI_LENGTH) return null;
  if (!isNumericDate(iat) || !isNumericDate(exp)) return null;
  if (nbf !== undefined && !isNumericDate(nbf)) return null;
  // A token that ends before (or when) it starts is not a short token, it is a broken one.
  if (exp <= iat) return null;
  const claims: CapabilityClaims = {
    iss,
    aud: audience,
    sub,
    scope: Object.freeze([...(scope as string[])]) as string[],
    iat,
    exp,
    jti,
  };
  if (nbf !== undefined) claims.nbf = nbf;
  return Object.freeze(claims);
}

function checkPositiveInteger(name: string, value: unknown, max: number, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`createTokenVerifier: ${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * Builds a verifier over pinned keys. The options are checked here, once, and a bad one throws
 * (at start, not per request). The keys are copied, so later changes to the map do not leak in.
 *
 * @example
 * const verifier = createTokenVerifier({ keys, issuer: 'agentpack-identity',
 *   audience: 'agentpack', maxTtlSeconds: 900 });
 * const verdict = verifier.verify(bearer, clock.now());
 * if (!verdict.ok) throw new ApiError('unauthenticated', TOKEN_REFUSAL_MESSAGES[verdict.reason]);
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const keys = new Map<string, KeyObject>(options.keys);
  if (keys.size === 0) throw new Error('createTokenVerifier: no pinned keys');
  for (const [kid, key] of keys) {
    if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') {
      throw new Error(`createTokenVerifier: pinned key "${kid}" is not an Ed25519 public key`);
    }
  }
  const { issuer, audience } = options;
  if (!isNonEmptyString(issuer)) throw new Error('createTokenVerifier: issuer is empty');
  if (!isNonEmptyString(audience)) throw new Error('createTokenVerifier: audience is empty');
  const maxTtl = checkPositiveInteger(
    'maxTtlSeconds',
    options.maxTtlSeconds,
    MAX_TTL_CEILING_SECONDS,
  );
  const skew = checkPositiveInteger(
    'skewSeconds',
    options.skewSeconds ?? DEFAULT_SKEW_SECONDS,
    MAX_SKEW_SECONDS,
    0,
  );
  const cacheSize = checkPositiveInteger(
    'cacheSize',
    options.cacheSize ?? DEFAULT_CACHE_SIZE,
    1_000_000,
    0,
  );
  const cache = cacheSize > 0 ? new Map<string, TokenVerdict & { ok: true }>() : null;

  /** The time-dependent checks, run on every verification including cache hits. */
  function timeRefusal(claims: CapabilityClaims, now: number): TokenRefusal | null {
    if (claims.exp <= now - skew) return 'expired';
    if (claims.nbf !== undefined && claims.nbf > now + skew) return 'not_yet_valid';
    if (claims.iat > now + skew) return 'not_yet_valid';
    return null;
  }

  function verifyUncached(token: string, now: number): TokenVerdict {
    // 1. Structure: exactly three segments (a JWE has five, a JWS JSON serialization none).
    const dot1 = token.indexOf('.');
    const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
    if (dot2 < 0 || token.indexOf('.', dot2 + 1) !== -1) return REFUSED.malformed;
    // 2. Encoding: every segment canonical unpadded base64url.
    const headerBytes = decodeBase64Url(token.slice(0, dot1));
    const payloadBytes = decodeBase64Url(token.slice(dot1 + 1, dot2));
    const signature = decodeBase64Url(token.slice(dot2 + 1));
    if (headerBytes === null || payloadBytes === null || signature === null) {
      return REFUSED.bad_encoding;
    }
    // 3. Protected header. Policy: the algorithm is pinned, never taken from the token, so
    // `none`, HMAC keyed with our public key and every other algorithm confusion is refused.
    const header = parseJsonSegment(headerBytes);
    if (!isJsonObject(header)) return REFUSED.malformed;
    if (header['alg'] !== TOKEN_ALG) return REFUSED.unsupported_alg;
    if (header['typ'] !== TOKEN_TYP) return REFUSED.bad_typ;
    const kid = header['kid'];
    if (typeof kid !== 'string') return REFUSED.bad_header;
    const key = keys.get(kid);
    if (key === undefined) return REFUSED.unknown_kid;
    // We understand no extension, so any `crit` must be refused (RFC 7515 §4.1.11).
    if (Object.hasOwn(header, 'crit')) return REFUSED.crit;
    // `b64: false` (RFC 7797) would change what is signed; we never use it.
    if (Object.hasOwn(header, 'b64')) return REFUSED.bad_header;
    // 4. Signature over the ASCII bytes of `header.payload` (ASCII is guaranteed by step 2).
    if (signature.length !== SIGNATURE_LENGTH) return REFUSED.bad_signature;
    let valid: boolean;
    try {
      valid = cryptoVerify(null, Buffer.from(token.slice(0, dot2), 'latin1'), key, signature);
    } catch {
      valid = false;
    }
    if (!valid) return REFUSED.bad_signature;
    // 5. Claims: present and typed, then issuer, audience and times.
    const payload = parseJsonSegment(payloadBytes);
    if (!isJsonObject(payload)) return REFUSED.bad_claims;
    const claims = readClaims(payload);
    if (claims === null) return REFUSED.bad_claims;
    if (claims.iss !== issuer) return REFUSED.wrong_issuer;
    const aud = claims.aud;
    if (typeof aud === 'string' ? aud !== audience : !aud.includes(audience)) {
      return REFUSED.wrong_audience;
    }
    const late = timeRefusal(claims, now);
    if (late !== null) return REFUSED[late];
    if (claims.exp - claims.iat > maxTtl) return REFUSED.lifetime_too_long;
    return Object.freeze({ ok: true as const, claims, kid });
  }

  return {
    verify(token: string, nowMs: number): TokenVerdict {
      if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) {
        throw new RangeError('verify: nowMs must be a finite number of milliseconds');
      }
      if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return REFUSED.malformed;
      const now = Math.floor(nowMs / 1000);
      if (cache !== null) {
        const hit = cache.get(token);
        if (hit !== undefined) {
          const late = timeRefusal(hit.claims, now);
          if (late === null) return hit;
          if (late === 'expired') cache.delete(token);
          return REFUSED[late];
        }
      }
      const verdict = verifyUncached(token, now);
      if (cache !== null && verdict.ok && token.length <= MAX_CACHED_TOKEN_LENGTH) {
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
        cache.set(token, verdict);
      }
      return verdict;
    },
  };
}

/**
 * Parses `AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`: unset or empty means
 * {@link DEFAULT_MAX_TTL_SECONDS}; otherwise a whole number of seconds from 1 to
 * {@link MAX_TTL_CEILING_SECONDS}. Throws an Error naming the variable on anything else.
 */
export function parseMaxTtlSeconds(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_MAX_TTL_SECONDS;
  const text = raw.trim();
  const value = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
  if (!(value <= MAX_TTL_CEILING_SECONDS)) {
    throw new Error(
      `AGENTPACK_CAPABILITY_MAX_TTL_SECONDS must be a whole number of seconds from 1 to ${MAX_TTL_CEILING_SECONDS}`,
    );
  }
  return value;
}
