/**
 * The public keys of trusted token issuers, for `/auth/exchange`: which key verifies a subject
 * token (a Kubernetes service-account token, a GitHub Actions OIDC token, a Google identity
 * token).
 *
 * An issuer's keys are either pinned in its record (a JWKS, parsed once per distinct document)
 * or discovered: `<issuer>/.well-known/openid-configuration` (whose `issuer` must be the
 * configured one exactly), then its `jwks_uri`, over HTTPS through the {@link FetchJson} port.
 * Discovered keys are cached per issuer for the JWKS's Cache-Control max-age clamped to
 * [1 min, 1 h] (10 min without one); an unknown `kid` refetches at most once a minute per issuer,
 * concurrent callers sharing one fetch; a failed refetch keeps the keys it had (stale keys serve
 * for up to 24 h past their expiry), so a failed, garbled or hostile answer never replaces or
 * wipes good keys. Nothing here logs, and no error carries key material or a fetched body.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { decodeBase64Url, isJsonObject, signingKeyProblem } from '@agentpack-identity/protocol';
import type { Clock } from '../ports/clock.js';
import { ApiError } from './errors.js';
import { fetchableUrl } from './fetchable-url.js';

/** Options of one bounded JSON GET. */
export interface FetchJsonOptions {
  /** The largest accepted body; past it the fetch fails and the socket is closed. */
  maxBytes?: number;
  /** The total deadline (connect, TLS, headers and body); default 5 s. */
  timeoutMs?: number;
  /** PEM certificates to trust instead of the default roots (tests' self-signed issuer). */
  ca?: string;
}

/** A fetched JSON object and the `max-age` of its Cache-Control header, if any. */
export interface FetchJsonResult {
  body: Record<string, unknown>;
  maxAgeSeconds: number | null;
}

/**
 * The port to the outside: a bounded GET of a JSON object (https, or http to a loopback host);
 * any failure rejects. The adapter is `fetchJson` in adapters/https-fetch.ts.
 */
export type FetchJson = (url: string, options?: FetchJsonOptions) => Promise<FetchJsonResult>;

/** The signature algorithms a subject token may use. */
export const ISSUER_KEY_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export type IssuerKeyAlg = (typeof ISSUER_KEY_ALGS)[number];

/** One usable verification key of an issuer. */
export interface VerificationKey {
  kid: string | null;
  alg: IssuerKeyAlg;
  key: KeyObject;
}

/** More keys than this in one JWKS is refused whole. */
export const MAX_JWKS_KEYS = 100;
/** The smallest accepted RSA modulus, and the largest (a verify's cost grows with it). */
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;

export const DISCOVERY_MAX_BYTES = 64 * 1024;
export const JWKS_MAX_BYTES = 256 * 1024;
export const DEFAULT_KEYS_TTL_MS = 10 * 60_000;
export const MIN_KEYS_TTL_MS = 60_000;
export const MAX_KEYS_TTL_MS = 60 * 60_000;
/** An issuer is fetched again (unknown `kid`, or after a failed refresh) at most this often. */
export const MIN_REFETCH_INTERVAL_MS = 60_000;
/** With no keys at all, a failed fetch is retried after this long (meanwhile: unavailable). */
export const FAILED_FETCH_RETRY_MS = 5_000;
/** How long past their expiry cached keys still serve while the issuer cannot be reached. */
export const MAX_STALE_MS = 24 * 60 * 60_000;
export const DEFAULT_MAX_ISSUERS = 256;

/** A `kid` that can be named in an error: printable ASCII without spaces. */
const NAMEABLE_KID = /^[\x21-\x7e]{1,128}$/;
/** Members that only a private or symmetric key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export interface ParseKeysOptions {
  /**
   * What a key with private members does: `throw` (the default; a pinned JWKS must never hold a
   * private key) or `skip` that key (a discovered JWKS, which is the issuer's to fix).
   */
  privateKeys?: 'throw' | 'skip';
}

/** Why one key is unusable, or its parsed form. */
type KeyOutcome = { ok: true; alg: IssuerKeyAlg; key: KeyObject } | { ok: false; why: string };

function importKey(jwk: JsonWebKey): KeyObject | null {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return null;
  }
}

/** True for exactly 32 bytes in canonical unpadded base64url. */
const isBytes32 = (v: unknown): v is string => decodeBase64Url(v, 32, 32) !== null;

/** Parses the public members of one JWK (already checked to have no private member). */
function parseKey(jwk: Record<string, unknown>): KeyOutcome {
  const kty = jwk['kty'];
  const expected: IssuerKeyAlg | null =
    kty === 'RSA' ? 'RS256' : kty === 'EC' ? 'ES256' : kty === 'OKP' ? 'EdDSA' : null;
  if (expected === null) return { ok: false, why: 'has an unsupported "kty"' };
  if (jwk['alg'] !== undefined && jwk['alg'] !== expected) {
    return { ok: false, why: `has "alg" other than "${expected}"` };
  }
  if (jwk['use'] !== undefined && jwk['use'] !== 'sig') {
    return { ok: false, why: 'has "use" other than "sig"' };
  }
  const ops = jwk['key_ops'];
  if (ops !== undefined && (!Array.isArray(ops) || !ops.includes('verify'))) {
    return { ok: false, why: 'has "key_ops" without "verify"' };
  }
  if (kty === 'RSA') {
    const { n, e } = jwk;
    const modulus = decodeBase64Url(n, 1, MAX_RSA_BITS / 8 + 1);
    const exponent = decodeBase64Url(e, 1, 8);
    if (typeof n !== 'string' || typeof e !== 'string' || modulus === null || exponent === null) {
      return { ok: false, why: 'has no "n" and "e" in canonical base64url' };
    }
    // Only the exponent every issuer uses: a small one (e = 1, 3) makes forgeries easy.
    if (e !== 'AQAB') return { ok: false, why: 'has an RSA exponent other than 65537 ("AQAB")' };
    const key = importKey({ kty: 'RSA', n, e });
    const bits = key?.asymmetricKeyDetails?.modulusLength;
    if (key === null || bits === undefined) return { ok: false, why: 'is not an RSA public key' };
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      return {
        ok: false,
        why: `has an RSA modulus outside ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`,
      };
    }
    return { ok: true, alg: expected, key };
  }
  if (kty === 'EC') {
    const { crv, x, y } = jwk;
    if (crv !== 'P-256') return { ok: false, why: 'is not on the P-256 curve' };
    if (!isBytes32(x) || !isBytes32(y)) {
      return { ok: false, why: 'has no 32-byte "x" and "y" in canonical base64url' };
    }
    const key = importKey({ kty: 'EC', crv, x, y });
    if (key === null) return { ok: false, why: 'is not a point of P-256' };
    return { ok: true, alg: expected, key };
  }
  const { crv, x } = jwk;
  if (crv !== 'Ed25519') return { ok: false, why: 'is not an Ed25519 key' };
  if (!isBytes32(x)) return { ok: false, why: 'has no 32-byte "x" in canonical base64url' };
  const problem = signingKeyProblem(Buffer.from(x, 'base64url'));
  if (problem !== null) return { ok: false, why: `has a public key that ${problem}` };
  const key = importKey({ kty: 'OKP', crv, x });
  if (key === null) return { ok: false, why: 'is not an Ed25519 public key' };
  return { ok: true, alg: expected, key };
}

/**
 * The usable verification keys of a JWKS document: RSA (2048 to 8192 bits) for RS256, EC P-256
 * for ES256, OKP Ed25519 for EdDSA. A key whose `alg`, `use` or `key_ops` says it is for
 * something else, of another type or curve, badly encoded, or repeating an earlier key's `kid`
 * and alg, is skipped. Throws an `invalid_argument` {@link ApiError} naming `source`, the problem
 * and the key (by index and, when printable, `kid`), never material: when the document is not
 * a JWKS, holds more than {@link MAX_JWKS_KEYS} keys or no usable key (the message then says why
 * the first keys were skipped), or a key has private members (unless `privateKeys: 'skip'`).
 */
export function parseVerificationKeys(
  jwks: unknown,
  source: string,
  options: ParseKeysOptions = {},
): VerificationKey[] {
  const refuse = (message: string): never => {
    throw new ApiError('invalid_argument', `${source}: ${message}`);
  };
  if (!isJsonObject(jwks) || !Array.isArray(jwks['keys'])) {
    return refuse('the JWKS must be an object with a "keys" array');
  }
  const list: unknown[] = jwks['keys'];
  if (list.length > MAX_JWKS_KEYS) {
    return refuse(`the JWKS has ${list.length} keys, more than ${MAX_JWKS_KEYS}`);
  }
  const keys: VerificationKey[] = [];
  const skipped: string[] = [];
  for (const [index, jwk] of list.entries()) {
    let name = `key #${index + 1}`;
    const kid = isJsonObject(jwk) ? jwk['kid'] : undefined;
    if (typeof kid === 'string' && NAMEABLE_KID.test(kid)) name += ` ("${kid}")`;
    let why: string | null = null;
    if (!isJsonObject(jwk)) why = 'is not an object';
    else if (PRIVATE_MEMBERS.some((member) => Object.hasOwn(jwk, member))) {
      if (options.privateKeys !== 'skip')
        refuse(`${name} is a private key: publish only public keys`);
      why = 'is a private key';
    } else if (kid !== undefined && (typeof kid !== 'string' || kid === '' || kid.length > 1024)) {
      why = 'has a "kid" that is not a short non-empty string';
    } else {
      const parsed = parseKey(jwk);
      const id = typeof kid === 'string' ? kid : null;
      if (!parsed.ok) why = parsed.why;
      else if (id !== null && keys.some((k) => k.kid === id && k.alg === parsed.alg)) {
        why = 'repeats the "kid" of an earlier key';
      } else keys.push({ kid: id, alg: parsed.alg, key: parsed.key });
    }
    if (why !== null) skipped.push(`${name} ${why}`);
  }
  if (keys.length === 0) {
    const why = skipped.length === 0 ? 'it is empty' : skipped.slice(0, 3).join('; ');
    return refuse(`the JWKS has no usable RS256, ES256 or EdDSA public key (${why})`);
  }
  return keys;
}

/** An issuer as its record stores it: `jwks` pinned inline, or null to discover. */
export interface IssuerRef {
  issuer: string;
  jwks: object | null;
}

/** What of a subject token's protected header picks its key. */
export interface KeyHeader {
  kid?: string;
  alg: IssuerKeyAlg;
}

export interface IssuerKeys {
  /**
   * The key that verifies a token of `issuer` with this header, or null when the issuer has no
   * such key (an unknown `kid`, even after the refetch it may trigger; an alg the key is not
   * for; no `kid` and not exactly one key of the alg). Throws `unavailable` when the issuer's
   * keys cannot be had (never fetched successfully, or stale past {@link MAX_STALE_MS}), and
   * for a pinned JWKS that no longer parses.
   */
  keyFor(issuer: IssuerRef, header: KeyHeader): Promise<KeyObject | null>;
}

export interface IssuerKeysOptions {
  fetchJson: FetchJson;
  clock: Clock;
  /** Passed to every fetch: the deadline (default: the adapter's, 5 s). */
  timeoutMs?: number;
  /** Passed to every fetch: PEM roots to trust (tests). */
  ca?: string;
  /** How many discovered issuers (and distinct pinned documents) to keep; the oldest go first. */
  maxIssuers?: number;
}

/** One discovered issuer's cached state. */
interface IssuerState {
  /** The last good keys, or null when no fetch has ever succeeded. */
  keys: readonly VerificationKey[] | null;
  /** When `keys` become stale. */
  expiresAt: number;
  /** When the last fetch started, success or not (-Infinity: never). */
  attemptedAt: number;
  /** The fetch under way, shared by every caller; resolves once the state is updated. */
  inflight: Promise<void> | null;
}

const UNAVAILABLE_MESSAGE = "the issuer's keys cannot be fetched";

/** The TTL for a fetched JWKS: its max-age clamped, or the default. */
export function keysTtlMs(maxAgeSeconds: number | null): number {
  if (maxAgeSeconds === null || !Number.isFinite(maxAgeSeconds)) return DEFAULT_KEYS_TTL_MS;
  return Math.min(MAX_KEYS_TTL_MS, Math.max(MIN_KEYS_TTL_MS, maxAgeSeconds * 1000));
}

/** The OIDC Discovery URL of an issuer: one trailing `/` stripped, then the well-known path. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.endsWith('/') ? issuer.slice(0, -1) : issuer}/.well-known/openid-configuration`;
}

type Selection = { found: KeyObject } | { found: null; refetch: boolean };

/**
 * The key for a header: by `kid` and alg; without a `kid`, the only key of the alg. A `kid` or
 * alg we do not have may be a rotation we have not seen (worth a refetch); a `kid` we have
 * with another alg, or several keys of the alg and no `kid`, is the token's problem.
 */
function select(keys: readonly VerificationKey[], header: KeyHeader): Selection {
  if (header.kid !== undefined) {
    const same = keys.filter((k) => k.kid === header.kid);
    const match = same.find((k) => k.alg === header.alg);
    if (match !== undefined) return { found: match.key };
    return { found: null, refetch: same.length === 0 };
  }
  const ofAlg = keys.filter((k) => k.alg === header.alg);
  if (ofAlg.length === 1) return { found: ofAlg[0]!.key };
  return { found: null, refetch: ofAlg.length === 0 };
}

/** Sets `key` last in a map bounded to `max` entries, dropping the oldest first. */
function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  while (map.size >= max) map.delete(map.keys().next().value as K);
  map.set(key, value);
}

/**
 * Builds the issuer key source. Its caches live as long as it does: make one per process.
 *
 * @example
 * const issuerKeys = createIssuerKeys({ fetchJson, clock: systemClock });
 * const key = await issuerKeys.keyFor(issuerRecord, { kid: header.kid, alg: header.alg });
 * if (key === null) refuse('bad_signature');
 */
export function createIssuerKeys(options: IssuerKeysOptions): IssuerKeys {
  const { clock } = options;
  const maxIssuers = options.maxIssuers ?? DEFAULT_MAX_ISSUERS;
  if (!Number.isSafeInteger(maxIssuers) || maxIssuers < 1) {
    throw new RangeError('createIssuerKeys: maxIssuers must be a positive integer');
  }
  const fetchOptions = (maxBytes: number): FetchJsonOptions => ({
    maxBytes,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });
  const discovered = new Map<string, IssuerState>();
  const pinned = new Map<string, readonly VerificationKey[] | ApiError>();

  function pinnedKeys(issuer: IssuerRef): readonly VerificationKey[] {
    const text = JSON.stringify(issuer.jwks);
    let parsed = pinned.get(text);
    if (parsed === undefined) {
      try {
        parsed = parseVerificationKeys(issuer.jwks, 'the pinned JWKS');
      } catch {
        parsed = new ApiError('unavailable', "the issuer's pinned keys are not usable");
      }
      setBounded(pinned, text, parsed, maxIssuers);
    }
    if (parsed instanceof ApiError) throw parsed;
    return parsed;
  }

  /** Discovery then JWKS; the new keys, or a throw on any failure (the caller keeps its own). */
  async function download(issuer: string): Promise<{ keys: VerificationKey[]; ttlMs: number }> {
    const discovery = await options.fetchJson(
      discoveryUrl(issuer),
      fetchOptions(DISCOVERY_MAX_BYTES),
    );
    if (discovery.body['issuer'] !== issuer) throw new Error('discovery names another issuer');
    const jwksUri = discovery.body['jwks_uri'];
    if (fetchableUrl(jwksUri) === null) throw new Error('discovery has no https jwks_uri');
    const jwks = await options.fetchJson(jwksUri as string, fetchOptions(JWKS_MAX_BYTES));
    const keys = parseVerificationKeys(jwks.body, issuer, { privateKeys: 'skip' });
    return { keys, ttlMs: keysTtlMs(jwks.maxAgeSeconds) };
  }

  /** Starts (or joins) the one fetch of an issuer; only a success changes its keys. */
  function refresh(issuer: string, state: IssuerState): Promise<void> {
    if (state.inflight !== null) return state.inflight;
    state.attemptedAt = clock.now();
    state.inflight = download(issuer).then(
      ({ keys, ttlMs }) => {
        state.keys = keys;
        state.expiresAt = clock.now() + ttlMs;
        state.inflight = null;
        if (discovered.get(issuer) === state) setBounded(discovered, issuer, state, maxIssuers);
      },
      () => {
        state.inflight = null;
      },
    );
    return state.inflight;
  }

  async function discoveredKey(issuer: string, header: KeyHeader): Promise<KeyObject | null> {
    let state = discovered.get(issuer);
    if (state === undefined) {
      state = { keys: null, expiresAt: -Infinity, attemptedAt: -Infinity, inflight: null };
      setBounded(discovered, issuer, state, maxIssuers);
    }
    const now = clock.now();
    if (state.keys !== null && now < state.expiresAt) {
      const first = select(state.keys, header);
      if (first.found !== null || !first.refetch) return first.found;
      if (state.inflight === null && now - state.attemptedAt < MIN_REFETCH_INTERVAL_MS) {
        return null;
      }
      await refresh(issuer, state);
      return select(state.keys, header).found;
    }
    // Stale, or never fetched: refresh unless a recent attempt failed.
    const retryAfter = state.keys === null ? FAILED_FETCH_RETRY_MS : MIN_REFETCH_INTERVAL_MS;
    if (state.inflight !== null || now - state.attemptedAt >= retryAfter) {
      await refresh(issuer, state);
    }
    if (state.keys === null || clock.now() >= state.expiresAt + MAX_STALE_MS) {
      throw new ApiError('unavailable', UNAVAILABLE_MESSAGE);
    }
    return select(state.keys, header).found;
  }

  return {
    async keyFor(issuer: IssuerRef, header: KeyHeader): Promise<KeyObject | null> {
      if (!(ISSUER_KEY_ALGS as readonly string[]).includes(header.alg)) return null;
      if (issuer.jwks !== null) {
        return select(pinnedKeys(issuer), header).found;
      }
      return discoveredKey(issuer.issuer, header);
    },
  };
}
