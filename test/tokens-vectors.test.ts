/**
 * Known-answer vectors for capability tokens (test/vectors/capability-tokens.json): one fixed
 * test key, fixed times, and one case per refusal reason plus the accepted edge cases. Each
 * case's verdict at the file's `nowMs` must match. Ed25519 signing is deterministic, so the
 * recipe below also rebuilds every token exactly: that pins our minter's exact output.
 *
 * To regenerate after a deliberate change:
 *   UPDATE_VECTORS=1 npx vitest run test/tokens-vectors.test.ts &&
 *   npx prettier --write test/vectors/capability-tokens.json
 */
import { createHash, createHmac, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mintCapabilityToken } from '@agentpack-identity/protocol';
import { loadPinnedKeys } from '../functions/src/tokens/pinned-keys.js';
import {
  createTokenVerifier,
  TOKEN_REFUSALS,
  type TokenVerdict,
} from '../functions/src/tokens/verify.js';

const FILE = join(dirname(fileURLToPath(import.meta.url)), 'vectors/capability-tokens.json');

interface VectorCase {
  name: string;
  token: string;
  expected: TokenVerdict;
}

interface VectorFile {
  description: string;
  issuer: string;
  audience: string;
  maxTtlSeconds: number;
  skewSeconds: number;
  nowMs: number;
  jwks: { keys: Array<Record<string, string>> };
  signingKey: Record<string, string>;
  cases: VectorCase[];
}

/** A test-only Ed25519 key from a fixed seed (PKCS#8 DER prefix for a raw Ed25519 seed). */
function fixedKey(label: string, kid: string): { key: KeyObject; jwk: Record<string, string> } {
  const seed = createHash('sha256').update(label).digest();
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const { kty, crv, x, d } = key.export({ format: 'jwk' });
  return { key, jwk: { kty: kty!, crv: crv!, x: x!, d: d!, kid, alg: 'EdDSA', use: 'sig' } };
}

const seg = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const rawSeg = (text: string) => Buffer.from(text, 'latin1').toString('base64url');

function signed(key: KeyObject, header: string, payload: string): string {
  const input = `${header}.${payload}`;
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
}

/** Rebuilds the vector file from the recipe: fixed keys, fixed times, fixed jti. */
function buildVectors(): VectorFile {
  const issuer = 'agentpack-identity';
  const audience = 'agentpack';
  const nowMs = Date.parse('2026-01-01T00:10:00.000Z');
  const now = nowMs / 1000;
  const pinned = fixedKey('agentpack-identity test vector key 1 (public test key)', 'vector-key-1');
  const other = fixedKey('agentpack-identity test vector key 2 (never pinned)', 'vector-key-2');
  const pub = ({ d: _d, ...rest }: Record<string, string>) => rest;
  const header = { alg: 'EdDSA', typ: 'agentpack-cap+jwt', kid: 'vector-key-1' };
  const claims = {
    iss: issuer,
    aud: audience,
    sub: 'agent-vector',
    scope: ['secrets/get:openai_key', 'secrets/list'],
    iat: now - 60,
    exp: now + 240,
    jti: 'vector-jti-1',
  };
  const make = (h: object, c: object, key = pinned.key) => signed(key, seg(h), seg(c));
  const cases: VectorCase[] = [];
  const ok = (name: string, token: string, c: object, kid = 'vector-key-1') =>
    cases.push({ name, token, expected: { ok: true, claims: c as never, kid } });
  const refused = (name: string, token: string, reason: (typeof TOKEN_REFUSALS)[number]) =>
    cases.push({ name, token, expected: { ok: false, reason } });

  // The reference token comes from our own minter: this pins its exact bytes.
  const minted = mintCapabilityToken({
    privateJwk: pinned.jwk,
    sub: claims.sub,
    scope: claims.scope,
    ttlSeconds: 300,
    issuer,
    audience,
    nowMs: (now - 60) * 1000,
    jti: claims.jti,
  });
  ok('valid: minted by mintCapabilityToken', minted.token, claims);
  const validToken = minted.token;
  const [h0, p0, s0] = validToken.split('.') as [string, string, string];

  const audList = { ...claims, aud: ['other-service', audience], nbf: now - 60 };
  ok(
    'valid: aud is a list that contains the audience, nbf in the past',
    make(header, audList),
    audList,
  );
  const inSkew = { ...claims, iat: now - 300, exp: now - 29 };
  ok('valid: expired 29 s ago, inside the 30 s skew', make(header, inSkew), inSkew);
  const early = { ...claims, iat: now + 30, exp: now + 330, nbf: now + 30 };
  ok('valid: iat and nbf 30 s ahead, at the edge of the skew', make(header, early), early);
  const longest = { ...claims, iat: now - 10, exp: now - 10 + 900 };
  ok('valid: lifetime exactly the 900 s cap', make(header, longest), longest);
  const extra = { ...claims, extra_claim: 'ignored' };
  ok('valid: an unknown claim is ignored and not returned', make(header, extra), claims);

  // Algorithm confusion.
  refused(
    'alg none with an empty signature',
    `${seg({ ...header, alg: 'none' })}.${p0}.`,
    'unsupported_alg',
  );
  const pubBytes = Buffer.from(pinned.jwk.x!, 'base64url');
  const hs = (secret: Buffer | string) => {
    const input = `${seg({ ...header, alg: 'HS256' })}.${p0}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  refused('HS256 keyed with the raw public key bytes', hs(pubBytes), 'unsupported_alg');
  refused(
    'HS256 keyed with the public key as base64url text',
    hs(pinned.jwk.x!),
    'unsupported_alg',
  );
  refused(
    'alg Ed25519 (fully specified name, not ours)',
    make({ ...header, alg: 'Ed25519' }, claims),
    'unsupported_alg',
  );
  refused('alg missing', make({ typ: header.typ, kid: header.kid }, claims), 'unsupported_alg');

  // Header.
  refused('typ missing', make({ alg: 'EdDSA', kid: 'vector-key-1' }, claims), 'bad_typ');
  refused('typ JWT', make({ ...header, typ: 'JWT' }, claims), 'bad_typ');
  refused('typ in other case', make({ ...header, typ: 'AGENTPACK-CAP+JWT' }, claims), 'bad_typ');
  refused('kid missing', make({ alg: 'EdDSA', typ: header.typ }, claims), 'bad_header');
  refused('kid not a string', make({ ...header, kid: 1 }, claims), 'bad_header');
  refused(
    'unknown kid (signed by an unpinned key)',
    make({ ...header, kid: 'vector-key-2' }, claims, other.key),
    'unknown_kid',
  );
  refused('crit header', make({ ...header, crit: ['exp'], exp: 1 }, claims), 'crit');
  refused('crit header, empty list', make({ ...header, crit: [] }, claims), 'crit');
  refused('b64 false (unencoded payload)', make({ ...header, b64: false }, claims), 'bad_header');
  refused('header is not JSON', signed(pinned.key, rawSeg('{"alg":"EdDSA"'), p0), 'malformed');
  refused('header is a JSON array', signed(pinned.key, seg([header]), p0), 'malformed');
  refused(
    'header is not UTF-8',
    signed(pinned.key, rawSeg('{"alg":"EdDSA","typ":"agentpack-cap+jwt","kid":"\xff"}'), p0),
    'malformed',
  );

  // Signature.
  refused(
    'tampered payload (sub changed, old signature)',
    `${h0}.${seg({ ...claims, sub: 'agent-evil' })}.${s0}`,
    'bad_signature',
  );
  const flipped = Buffer.from(s0, 'base64url');
  flipped[10] = flipped[10]! ^ 0x01;
  refused(
    'tampered signature (one bit of R)',
    `${h0}.${p0}.${flipped.toString('base64url')}`,
    'bad_signature',
  );
  const sBytes = Buffer.from(s0, 'base64url');
  sBytes[63] = sBytes[63]! ^ 0x10; // S ≥ L or another S: must fail either way
  refused(
    'tampered signature (high bits of S)',
    `${h0}.${p0}.${sBytes.toString('base64url')}`,
    'bad_signature',
  );
  refused('pinned kid, signed by another key', make(header, claims, other.key), 'bad_signature');
  refused(
    'signature of 63 bytes',
    `${h0}.${p0}.${Buffer.from(s0, 'base64url').subarray(0, 63).toString('base64url')}`,
    'bad_signature',
  );
  refused('signature empty', `${h0}.${p0}.`, 'bad_signature');

  // Encoding.
  refused('non-canonical: padded signature', `${validToken}==`, 'bad_encoding');
  const last = s0[s0.length - 1]!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  // 64 bytes take 86 characters, the last carrying 2 bits and 4 unused ones: set one of those.
  const sibling = alphabet[alphabet.indexOf(last) ^ 0x01]!;
  refused(
    'non-canonical: unused trailing bits set',
    `${h0}.${p0}.${s0.slice(0, -1)}${sibling}`,
    'bad_encoding',
  );
  const std = (text: string) =>
    Buffer.from(text, 'base64url').toString('base64').replace(/=+$/, '');
  if (std(s0) === s0) throw new Error('pick a reference token whose signature has - or _');
  refused('non-canonical: standard alphabet (+ and /)', `${h0}.${p0}.${std(s0)}`, 'bad_encoding');
  refused(
    'non-canonical: whitespace inside a segment',
    `${h0}.${p0.slice(0, 10)} ${p0.slice(10)}.${s0}`,
    'bad_encoding',
  );

  // Structure.
  refused('extra segment', `${validToken}.${seg({})}`, 'malformed');
  refused('five segments (JWE shape)', `${h0}..${p0}.${s0}.${s0}`, 'malformed');
  refused('two segments', `${h0}.${p0}`, 'malformed');
  refused('one segment', h0, 'malformed');
  refused('empty string', '', 'malformed');
  refused(
    'longer than 8 KiB',
    `${h0}.${seg({ ...claims, pad: 'x'.repeat(6200) })}.${s0}`,
    'malformed',
  );

  // Claims (all correctly signed: only the claims are wrong).
  const bad = (name: string, c: object) => refused(name, make(header, c), 'bad_claims');
  bad('claims: payload is a JSON array', [claims]);
  bad('claims: scope empty', { ...claims, scope: [] });
  bad('claims: scope not a list', { ...claims, scope: 'secrets/get' });
  bad('claims: scope entry outside the grammar', { ...claims, scope: ['secrets/get:bad name'] });
  bad('claims: sub not an agent id', { ...claims, sub: 'Agent Vector' });
  bad('claims: jti missing', { ...claims, jti: undefined });
  bad('claims: jti longer than 128', { ...claims, jti: 'j'.repeat(129) });
  bad('claims: iat not an integer', { ...claims, iat: now - 60.5 });
  bad('claims: exp a string', { ...claims, exp: String(now + 240) });
  bad('claims: exp not after iat', { ...claims, exp: claims.iat });
  bad('claims: nbf null', { ...claims, nbf: null });
  bad('claims: aud an empty list', { ...claims, aud: [] });
  bad('claims: iss missing', { ...claims, iss: undefined });
  refused('wrong iss', make(header, { ...claims, iss: 'someone-else' }), 'wrong_issuer');
  refused('wrong aud', make(header, { ...claims, aud: 'other-service' }), 'wrong_audience');
  refused(
    'wrong aud (list without ours)',
    make(header, { ...claims, aud: ['a-service', 'b-service'] }),
    'wrong_audience',
  );
  refused(
    'expired (exp 31 s ago)',
    make(header, { ...claims, iat: now - 300, exp: now - 31 }),
    'expired',
  );
  refused(
    'expired (exactly at the skew edge)',
    make(header, { ...claims, iat: now - 300, exp: now - 30 }),
    'expired',
  );
  refused('nbf in the future (31 s)', make(header, { ...claims, nbf: now + 31 }), 'not_yet_valid');
  refused(
    'iat in the future (31 s)',
    make(header, { ...claims, iat: now + 31, exp: now + 331 }),
    'not_yet_valid',
  );
  refused(
    'lifetime above the cap (901 s)',
    make(header, { ...claims, iat: now - 10, exp: now + 891 }),
    'lifetime_too_long',
  );

  return {
    description:
      'Capability token known-answer vectors for agentpack-identity. Test-only keys: ' +
      'signingKey is derived from a public seed and must never be pinned anywhere real. ' +
      'Each case: verify(token, nowMs) with the jwks, issuer, audience, maxTtlSeconds and ' +
      'skewSeconds below must return expected. Regenerate with UPDATE_VECTORS=1 (see ' +
      'test/tokens-vectors.test.ts).',
    issuer,
    audience,
    maxTtlSeconds: 900,
    skewSeconds: 30,
    nowMs,
    jwks: { keys: [pub(pinned.jwk)] },
    signingKey: pinned.jwk,
    cases,
  };
}

if (process.env['UPDATE_VECTORS'] === '1') {
  writeFileSync(FILE, `${JSON.stringify(buildVectors(), null, 2)}\n`);
}
const vectors = JSON.parse(readFileSync(FILE, 'utf8')) as VectorFile;

function verifierFor(cacheSize: number) {
  return createTokenVerifier({
    keys: loadPinnedKeys(JSON.stringify(vectors.jwks)),
    issuer: vectors.issuer,
    audience: vectors.audience,
    maxTtlSeconds: vectors.maxTtlSeconds,
    skewSeconds: vectors.skewSeconds,
    cacheSize,
  });
}

describe('capability token vectors', () => {
  it('has a case for every refusal reason and at least one accepted token', () => {
    const reasons = new Set(
      vectors.cases.flatMap((c) => (c.expected.ok ? [] : [c.expected.reason])),
    );
    expect([...reasons].sort()).toEqual([...TOKEN_REFUSALS].sort());
    expect(vectors.cases.filter((c) => c.expected.ok).length).toBeGreaterThanOrEqual(1);
    expect(new Set(vectors.cases.map((c) => c.name)).size).toBe(vectors.cases.length);
  });

  describe.each([
    ['cache off', 0],
    ['cache on', 100],
  ])('verifier (%s)', (_label, cacheSize) => {
    const verifier = verifierFor(cacheSize);
    it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
      expect(verifier.verify(c.token, vectors.nowMs)).toEqual(c.expected);
      // Presented again (a cache hit when the cache is on): the same verdict.
      expect(verifier.verify(c.token, vectors.nowMs)).toEqual(c.expected);
    });
  });

  it('is rebuilt exactly by its recipe (our minter and signer are deterministic)', () => {
    // Through JSON, so the comparison sees exactly what the file holds (no undefined members).
    expect(JSON.parse(JSON.stringify(buildVectors()))).toEqual(vectors);
  });

  it('moves accepted tokens to expired once the clock passes exp + skew', () => {
    const verifier = verifierFor(100);
    for (const c of vectors.cases.filter((x) => x.expected.ok)) {
      const { claims } = c.expected as { claims: { exp: number } };
      expect(verifier.verify(c.token, vectors.nowMs)).toEqual(c.expected);
      expect(verifier.verify(c.token, (claims.exp + vectors.skewSeconds) * 1000)).toEqual({
        ok: false,
        reason: 'expired',
      });
    }
  });
});
