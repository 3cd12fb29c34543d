/**
 * The verifier beyond the vectors: options checked when built, the cache (bounded, re-checks
 * time on every hit, hands out frozen claims), and properties: any single-byte change of a
 * token fails, no input string makes it throw, and every minted token round-trips.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DELEGABLE_RPCS } from '@agentpack-identity/protocol';
import { generateSigningKey, mintCapabilityToken } from '@agentpack-identity/protocol';
import { loadPinnedKeys } from '../functions/src/tokens/pinned-keys.js';
import {
  createTokenVerifier,
  parseMaxTtlSeconds,
  TOKEN_REFUSAL_MESSAGES,
  TOKEN_REFUSALS,
  type TokenVerifierOptions,
} from '../functions/src/tokens/verify.js';

const ISSUER = 'agentpack-identity';
const AUDIENCE = 'agentpack';
const NOW_MS = Date.parse('2026-02-01T08:00:00.000Z');
const NOW = NOW_MS / 1000;

const { privateJwk, publicJwk } = generateSigningKey();
const keys = loadPinnedKeys(JSON.stringify({ keys: [publicJwk] }));

function verifier(overrides: Partial<TokenVerifierOptions> = {}) {
  return createTokenVerifier({
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    maxTtlSeconds: 900,
    ...overrides,
  });
}

function mint(sub = 'agent-a', nowMs = NOW_MS, ttlSeconds = 300) {
  return mintCapabilityToken({
    privateJwk,
    sub,
    scope: ['secrets/get:openai_key'],
    ttlSeconds,
    issuer: ISSUER,
    audience: AUDIENCE,
    nowMs,
  }).token;
}

describe('createTokenVerifier options', () => {
  it.each([
    ['no keys', { keys: new Map() }, /no pinned keys/],
    [
      'a private key',
      { keys: new Map([['k', generateKeyPairSync('ed25519').privateKey]]) },
      /"k" is not an Ed25519 public key/,
    ],
    [
      'an RSA key',
      { keys: new Map([['r', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey]]) },
      /"r" is not an Ed25519/,
    ],
    ['an empty issuer', { issuer: '' }, /issuer is empty/],
    ['an empty audience', { audience: '' }, /audience is empty/],
    ['maxTtlSeconds 0', { maxTtlSeconds: 0 }, /maxTtlSeconds must be an integer from 1 to 86400/],
    ['maxTtlSeconds above a day', { maxTtlSeconds: 86_401 }, /maxTtlSeconds/],
    ['maxTtlSeconds fractional', { maxTtlSeconds: 1.5 }, /maxTtlSeconds/],
    ['a negative skew', { skewSeconds: -1 }, /skewSeconds must be an integer from 0 to 300/],
    ['a skew above 5 minutes', { skewSeconds: 301 }, /skewSeconds/],
    ['a negative cache size', { cacheSize: -1 }, /cacheSize/],
  ] as const)('refuses %s at build time', (_name, overrides, message) => {
    expect(() => verifier(overrides as Partial<TokenVerifierOptions>)).toThrow(message);
  });

  it('copies the keys: removing one from the map afterwards changes nothing', () => {
    const map = new Map(keys);
    const v = createTokenVerifier({
      keys: map,
      issuer: ISSUER,
      audience: AUDIENCE,
      maxTtlSeconds: 900,
      cacheSize: 0,
    });
    map.clear();
    expect(v.verify(mint(), NOW_MS).ok).toBe(true);
  });

  it('throws a RangeError (a caller bug, not bad input) for a clock that is not a number', () => {
    for (const now of [Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
      expect(() => verifier().verify(mint(), now)).toThrow(RangeError);
    }
  });

  it('honours a custom skew', () => {
    const token = mint('agent-a', NOW_MS, 60); // exp = NOW + 60
    const at = (s: number) => (NOW + s) * 1000;
    expect(verifier({ skewSeconds: 0, cacheSize: 0 }).verify(token, at(59)).ok).toBe(true);
    expect(verifier({ skewSeconds: 0, cacheSize: 0 }).verify(token, at(60))).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(verifier({ skewSeconds: 120, cacheSize: 0 }).verify(token, at(179)).ok).toBe(true);
  });

  it('has a message for every refusal reason, naming no claim value', () => {
    expect(Object.keys(TOKEN_REFUSAL_MESSAGES).sort()).toEqual([...TOKEN_REFUSALS].sort());
  });
});

describe('the verified-token cache', () => {
  it('answers a repeated token from the cache (same frozen verdict), and only with the cache on', () => {
    const token = mint();
    const cached = verifier();
    const first = cached.verify(token, NOW_MS);
    expect(first.ok).toBe(true);
    expect(cached.verify(token, NOW_MS + 1000)).toBe(first);
    const uncached = verifier({ cacheSize: 0 });
    const one = uncached.verify(token, NOW_MS);
    expect(uncached.verify(token, NOW_MS)).not.toBe(one);
    expect(uncached.verify(token, NOW_MS)).toEqual(one);
  });

  it('hands out frozen claims, so no caller can change what the next one sees', () => {
    const v = verifier();
    const verdict = v.verify(mint(), NOW_MS);
    if (!verdict.ok) throw new Error('expected a valid token');
    expect(Object.isFrozen(verdict)).toBe(true);
    expect(Object.isFrozen(verdict.claims)).toBe(true);
    expect(Object.isFrozen(verdict.claims.scope)).toBe(true);
    expect(() => verdict.claims.scope.push('secrets/put')).toThrow(TypeError);
  });

  it('re-checks exp, nbf and iat on every hit', () => {
    const v = verifier();
    const token = mint(); // iat = NOW, exp = NOW + 300
    const first = v.verify(token, NOW_MS);
    expect(first.ok).toBe(true);
    // The clock went back before iat - skew: not valid yet, even from the cache.
    expect(v.verify(token, (NOW - 31) * 1000)).toEqual({ ok: false, reason: 'not_yet_valid' });
    expect(v.verify(token, (NOW + 329) * 1000).ok).toBe(true);
    expect(v.verify(token, (NOW + 330) * 1000)).toEqual({ ok: false, reason: 'expired' });
    // The expired entry was dropped: at an earlier time the token is checked in full again.
    const again = v.verify(token, NOW_MS);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('is bounded: beyond cacheSize the oldest token is evicted', () => {
    const v = verifier({ cacheSize: 2 });
    const [t1, t2, t3] = ['agent-one', 'agent-two', 'agent-three'].map((s) => mint(s));
    const r1 = v.verify(t1!, NOW_MS);
    const r2 = v.verify(t2!, NOW_MS);
    expect(v.verify(t1!, NOW_MS)).toBe(r1);
    const r3 = v.verify(t3!, NOW_MS); // evicts t1, the oldest
    expect(v.verify(t3!, NOW_MS)).toBe(r3);
    expect(v.verify(t2!, NOW_MS)).toBe(r2);
    const again = v.verify(t1!, NOW_MS);
    expect(again).not.toBe(r1);
    expect(again).toEqual(r1);
  });

  it('never caches a refusal: a token refused once is checked in full again', () => {
    const token = mint();
    const strict = verifier({ audience: 'someone-else' });
    expect(strict.verify(token, NOW_MS)).toEqual({ ok: false, reason: 'wrong_audience' });
    expect(strict.verify(token, NOW_MS)).toEqual({ ok: false, reason: 'wrong_audience' });
  });
});

describe('properties', () => {
  const token = mint();
  const bytes = Buffer.from(token, 'latin1');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

  it('the unmodified token verifies (so the mutations below are what fails)', () => {
    expect(verifier({ cacheSize: 0 }).verify(token, NOW_MS).ok).toBe(true);
  });

  it('changing any one character to another base64url character never verifies', () => {
    const v = verifier();
    expect(v.verify(token, NOW_MS).ok).toBe(true); // cached: mutations must still miss
    for (let i = 0; i < token.length; i++) {
      const c = token[i]!;
      const replacement = c === '.' ? 'A' : alphabet[(alphabet.indexOf(c) + 1) % 64]!;
      const mutated = `${token.slice(0, i)}${replacement}${token.slice(i + 1)}`;
      expect(v.verify(mutated, NOW_MS).ok, `position ${i}`).toBe(false);
    }
  });

  it('any single-byte change of the token never verifies', () => {
    const v = verifier();
    v.verify(token, NOW_MS);
    fc.assert(
      fc.property(
        fc.nat({ max: bytes.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (index, delta) => {
          const mutated = Buffer.from(bytes);
          mutated[index] = (mutated[index]! + delta) & 0xff;
          expect(v.verify(mutated.toString('latin1'), NOW_MS).ok).toBe(false);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('deleting or inserting one character never verifies', () => {
    const v = verifier({ cacheSize: 0 });
    fc.assert(
      fc.property(fc.nat({ max: token.length }), fc.constantFrom(...alphabet, '.', '='), (i, c) => {
        const at = i % token.length; // a deletion needs a character to delete
        expect(v.verify(token.slice(0, at) + token.slice(at + 1), NOW_MS).ok).toBe(false);
        expect(v.verify(token.slice(0, i) + c + token.slice(i), NOW_MS).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on any string, and refuses it with a known reason', () => {
    const v = verifier();
    const known = new Set<string>(TOKEN_REFUSALS);
    const segment = fc.oneof(
      fc.string({ unit: 'binary' }).map((s) => Buffer.from(s).toString('base64url')),
      fc.jsonValue().map((j) => Buffer.from(JSON.stringify(j) ?? '').toString('base64url')),
      fc.string(),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 9000 }),
          fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => s.join('.')),
          fc.jsonValue().map((j) => {
            const h = Buffer.from(
              JSON.stringify({ alg: 'EdDSA', typ: 'agentpack-cap+jwt', kid: publicJwk.kid }),
            );
            return `${h.toString('base64url')}.${Buffer.from(JSON.stringify(j) ?? '').toString('base64url')}.${token.split('.')[2]}`;
          }),
        ),
        (input) => {
          const verdict = v.verify(input, NOW_MS);
          expect(verdict.ok).toBe(false);
          if (!verdict.ok) expect(known.has(verdict.reason)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('every token minted from valid inputs verifies with exactly the minted claims', () => {
    const v = verifier({ cacheSize: 0 });
    const agentId = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{2,62}$/);
    const resource = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/);
    const entry = fc
      .tuple(fc.constantFrom(...DELEGABLE_RPCS), fc.option(resource))
      .map(([rpc, res]) => (res === null ? rpc : `${rpc}:${res}`));
    fc.assert(
      fc.property(
        agentId,
        fc.array(entry, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 900 }),
        fc.integer({ min: 0, max: 999 }),
        (sub, scope, ttl, ms) => {
          const nowMs = NOW_MS + ms;
          const minted = mintCapabilityToken({
            privateJwk,
            sub,
            scope,
            ttlSeconds: ttl,
            issuer: ISSUER,
            audience: AUDIENCE,
            nowMs,
          });
          expect(v.verify(minted.token, nowMs)).toEqual({
            ok: true,
            claims: minted.claims,
            kid: minted.kid,
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('parseMaxTtlSeconds (AGENTPACK_CAPABILITY_MAX_TTL_SECONDS)', () => {
  it('defaults to 900 and reads whole seconds up to a day', () => {
    expect(parseMaxTtlSeconds(undefined)).toBe(900);
    expect(parseMaxTtlSeconds('')).toBe(900);
    expect(parseMaxTtlSeconds('60')).toBe(60);
    expect(parseMaxTtlSeconds(' 3600 ')).toBe(3600);
    expect(parseMaxTtlSeconds('86400')).toBe(86_400);
  });

  it.each(['0', '-5', '1.5', '1e3', 'abc', '86401', '0900', '99999999999'])('refuses %j', (raw) => {
    expect(() => parseMaxTtlSeconds(raw)).toThrow(/AGENTPACK_CAPABILITY_MAX_TTL_SECONDS/);
  });
});
