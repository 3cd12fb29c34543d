/**
 * Offline verification of the service's two kinds of JWT from a JWKS, for downstream services:
 * capability tokens (EdDSA/Ed25519, `typ: agentpack-cap+jwt`, minted offline by an operator)
 * and run tokens (ES256/P-256, `typ: agentpack-run+jwt`, signed by the service's online key).
 * Each kind is accepted only with its own `typ`, its own `alg` and a key of its own curve, so
 * one can never pass for the other. The checks run in the order jose's `jwtVerify` uses —
 * shape, protected header, key, signature, then the claims — and a refusal names one reason.
 * node:crypto verifies where present, @noble/curves elsewhere.
 */
import {
  MAX_TOKEN_LENGTH,
  RUN_TOKEN_ALG,
  RUN_TOKEN_TYP,
  TOKEN_ALG,
  TOKEN_TYP,
  type CapabilityClaims,
  type RunTokenClaims,
} from '@agentpack-identity/protocol';
import { cryptoBackend, type CryptoChoice } from './crypto/backend.js';
import { fromBase64Url, fromUtf8, utf8 } from './crypto/bytes.js';
import { AgentpackError } from './errors.js';
import type { FetchLike } from './transport.js';

export type { CapabilityClaims, RunTokenClaims } from '@agentpack-identity/protocol';

/** A public JWK, as a JWKS lists it (members this code does not read are kept and ignored). */
export interface Jwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  crv?: string;
  x?: string;
  y?: string;
  [member: string]: unknown;
}

/** A JSON Web Key Set. */
export interface Jwks {
  keys: Jwk[];
}

/** Why a token was refused. */
export type TokenRefusal =
  | 'malformed'
  | 'wrong_type'
  | 'unknown_kid'
  | 'bad_signature'
  | 'bad_claims'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  | 'not_yet_valid'
  | 'lifetime_too_long';

/** A refused token: `reason` says which check failed; the message names no claim value. */
export class TokenVerificationError extends Error {
  override readonly name = 'TokenVerificationError';
  constructor(
    readonly reason: TokenRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifyOptions {
  /** The keys: a JWKS object (`client.wellKnown.identity()).jwks`, `fetchJwks(...)`). */
  jwks: Jwks;
  /** The only accepted `iss`. */
  issuer: string;
  /** `aud` must equal it or, as a list, contain it. */
  audience: string;
  /** Tolerated clock difference for `exp`, `nbf` and `iat`, in seconds; default 30. */
  skewSeconds?: number;
  /** The longest accepted lifetime `exp - iat`; default 900 for capability tokens, none for run tokens. */
  maxLifetimeSeconds?: number;
  /** Milliseconds since the Unix epoch; default now. */
  now?: number;
  crypto?: CryptoChoice;
}

interface Kind {
  what: string;
  typ: string;
  alg: string;
  kty: string;
  crv: string;
  defaultMaxLifetime: number | null;
}

const CAPABILITY: Kind = {
  what: 'capability token',
  typ: TOKEN_TYP,
  alg: TOKEN_ALG,
  kty: 'OKP',
  crv: 'Ed25519',
  defaultMaxLifetime: 900,
};

const RUN: Kind = {
  what: 'run token',
  typ: RUN_TOKEN_TYP,
  alg: RUN_TOKEN_ALG,
  kty: 'EC',
  crv: 'P-256',
  defaultMaxLifetime: null,
};

const HEADER_MEMBERS = new Set(['alg', 'typ', 'kid']);

function refuse(reason: TokenRefusal, message: string): never {
  throw new TokenVerificationError(reason, message);
}

function json(segment: string): Record<string, unknown> | null {
  const bytes = fromBase64Url(segment);
  const text = bytes === null ? null : fromUtf8(bytes);
  if (text === null) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const isTime = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isTextList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((e) => typeof e === 'string');

async function verifyJwt(
  kind: Kind,
  token: unknown,
  options: VerifyOptions,
): Promise<Record<string, unknown>> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    refuse('malformed', `the ${kind.what} is not a compact JWS`);
  }
  const parts = token.split('.');
  if (parts.length !== 3) refuse('malformed', `the ${kind.what} is not a compact JWS`);
  const [h, p, s] = parts as [string, string, string];
  const header = json(h);
  if (header === null) refuse('malformed', `the ${kind.what}'s header is not base64url JSON`);
  // Its own typ and alg only: a run token is never a capability token, nor the reverse.
  if (header['typ'] !== kind.typ) refuse('wrong_type', `a ${kind.what}'s typ must be ${kind.typ}`);
  if (header['alg'] !== kind.alg)
    refuse('wrong_type', `a ${kind.what} must be signed with ${kind.alg}`);
  if (Object.keys(header).some((k) => !HEADER_MEMBERS.has(k))) {
    // `crit`, `jku`, `x5u`, `jwk`... : nothing else is ever sent, and nothing else is trusted.
    refuse('malformed', `the ${kind.what}'s header has members other than alg, typ and kid`);
  }
  const kid = header['kid'];
  if (!isText(kid)) refuse('malformed', `the ${kind.what}'s header has no kid`);
  const keys = Array.isArray(options.jwks?.keys) ? options.jwks.keys : [];
  const jwk = keys.find(
    (k) =>
      typeof k === 'object' &&
      k !== null &&
      k.kid === kid &&
      k.kty === kind.kty &&
      k.crv === kind.crv &&
      (k.alg === undefined || k.alg === kind.alg) &&
      (k.use === undefined || k.use === 'sig'),
  );
  if (jwk === undefined)
    refuse('unknown_kid', `no ${kind.crv} key of the JWKS has the token's kid`);
  const signature = fromBase64Url(s);
  const payload = json(p);
  if (signature === null || payload === null) {
    refuse('malformed', `the ${kind.what}'s payload or signature is not base64url`);
  }
  const backend = await cryptoBackend(options.crypto ?? 'auto');
  const signed = utf8(`${h}.${p}`);
  let valid: boolean;
  if (kind.kty === 'OKP') {
    const x = fromBase64Url(jwk.x);
    valid = x !== null && x.length === 32 && backend.verifyEd25519(x, signed, signature);
  } else {
    const x = fromBase64Url(jwk.x);
    const y = fromBase64Url(jwk.y);
    valid = x !== null && y !== null && backend.verifyP256({ x, y }, signed, signature);
  }
  if (!valid) refuse('bad_signature', `the ${kind.what}'s signature does not verify`);
  const { iss, aud, iat, exp, nbf } = payload;
  if (!isText(iss) || !(isText(aud) || (isTextList(aud) && aud.length > 0))) {
    refuse('bad_claims', `the ${kind.what} has no iss or aud`);
  }
  if (!isTime(iat) || !isTime(exp) || exp <= iat || (nbf !== undefined && !isTime(nbf))) {
    refuse('bad_claims', `the ${kind.what}'s iat, exp or nbf are not times`);
  }
  if (iss !== options.issuer)
    refuse('wrong_issuer', `the ${kind.what} was issued by another issuer`);
  if (typeof aud === 'string' ? aud !== options.audience : !aud.includes(options.audience)) {
    refuse('wrong_audience', `the ${kind.what} is meant for another audience`);
  }
  const skew = options.skewSeconds ?? 30;
  if (!Number.isFinite(skew) || skew < 0) throw new TypeError('skewSeconds must be 0 or more');
  const nowSeconds = (options.now ?? Date.now()) / 1000;
  if (exp + skew <= nowSeconds) refuse('expired', `the ${kind.what} has expired`);
  if (nbf !== undefined && nbf - skew > nowSeconds) {
    refuse('not_yet_valid', `the ${kind.what} is not valid yet`);
  }
  if (iat - skew > nowSeconds) refuse('not_yet_valid', `the ${kind.what} was issued in the future`);
  const maxLifetime = options.maxLifetimeSeconds ?? kind.defaultMaxLifetime;
  if (maxLifetime !== null && exp - iat > maxLifetime) {
    refuse('lifetime_too_long', `the ${kind.what}'s lifetime is longer than ${maxLifetime} s`);
  }
  return payload;
}

/**
 * Verifies a capability token offline (EdDSA, `typ: agentpack-cap+jwt`) with the Ed25519 keys
 * of `jwks` — the `jwks` of `/.well-known/agentpack-identity` — and answers its claims. Throws
 * a {@link TokenVerificationError} (`reason`) when any check fails.
 */
export async function verifyCapabilityToken(
  token: string,
  options: VerifyOptions,
): Promise<CapabilityClaims> {
  const claims = await verifyJwt(CAPABILITY, token, options);
  const { sub, scope, jti } = claims;
  if (!isText(sub) || !isTextList(scope) || scope.length === 0 || !isText(jti)) {
    refuse('bad_claims', 'the capability token has no sub, scope or jti');
  }
  return claims as unknown as CapabilityClaims;
}

/**
 * Verifies a run token offline (ES256, `typ: agentpack-run+jwt`) with the P-256 keys of `jwks`
 * — `/.well-known/jwks.json` — and answers its claims. `issuer` is the service's issuer URL;
 * `audience` the one the token was made for (by default the issuer URL too). Throws a
 * {@link TokenVerificationError} when any check fails.
 */
export async function verifyRunToken(
  token: string,
  options: VerifyOptions,
): Promise<RunTokenClaims> {
  const claims = await verifyJwt(RUN, token, options);
  const { sub, run_id, root_run_id, lineage, scope, jti, aud } = claims;
  if (
    !isText(sub) ||
    !isText(run_id) ||
    !isText(root_run_id) ||
    !isTextList(lineage) ||
    !isTextList(scope) ||
    !isText(jti) ||
    typeof aud !== 'string'
  ) {
    refuse('bad_claims', 'the run token lacks sub, run_id, root_run_id, lineage, scope or jti');
  }
  return claims as unknown as RunTokenClaims;
}

/**
 * GETs a JWKS (e.g. `<service>/.well-known/jwks.json`, or any issuer's `jwks_uri`), with a
 * deadline; redirects are not followed. Throws an {@link AgentpackError} when the answer is not
 * a JWKS.
 */
export async function fetchJwks(
  url: string,
  options: { fetch?: FetchLike; timeoutMs?: number } = {},
): Promise<Jwks> {
  const doFetch: FetchLike =
    options.fetch ?? ((u, init) => globalThis.fetch(u, init as RequestInit));
  const controller = new AbortController();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let status: number;
  let text: string;
  try {
    const response = await doFetch(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal: controller.signal,
      redirect: 'manual',
    });
    status = response.status;
    text = await response.text();
  } catch (cause) {
    throw new AgentpackError({
      code: controller.signal.aborted ? 'timeout' : 'unavailable',
      message: `fetchJwks: ${url} could not be read`,
      cause,
    });
  } finally {
    clearTimeout(timer);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const keys = (body as { keys?: unknown } | undefined)?.keys;
  if (status !== 200 || !Array.isArray(keys)) {
    throw new AgentpackError({
      code: 'bad_response',
      message: `fetchJwks: ${url} did not answer a JWKS (HTTP ${status})`,
      status,
    });
  }
  return { keys: keys.filter((k): k is Jwk => typeof k === 'object' && k !== null) };
}
