/**
 * The operator-side minter: key generation, private key import checks (never echoing key
 * material), and input checks so that what it signs is a token the service can accept.
 */
import { describe, expect, it } from 'vitest';
import {
  generateSigningKey,
  GRANTABLE_RPCS,
  importSigningKey,
  jwkThumbprint,
  mintCapabilityToken,
  type MintOptions,
} from '@agentpack-identity/protocol';

const { privateJwk, publicJwk } = generateSigningKey();
const NOW_MS = Date.parse('2026-04-01T00:00:00.750Z');

function options(overrides: Partial<MintOptions> = {}): MintOptions {
  return {
    privateJwk,
    sub: 'agent-a',
    scope: ['secrets/get'],
    ttlSeconds: 300,
    issuer: 'agentpack-identity',
    audience: 'agentpack',
    nowMs: NOW_MS,
    ...overrides,
  };
}

const decode = (segment: string) => JSON.parse(Buffer.from(segment, 'base64url').toString());

describe('generateSigningKey', () => {
  it('returns matching Ed25519 JWKs whose public half has no private member', () => {
    expect(publicJwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      kid: jwkThumbprint(publicJwk.x),
      alg: 'EdDSA',
      use: 'sig',
    });
    expect(privateJwk).toEqual({ ...publicJwk, d: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(publicJwk).not.toHaveProperty('d');
    expect(generateSigningKey().publicJwk.x).not.toBe(publicJwk.x);
  });

  it('takes a kid, and refuses one that could not be named in a log line', () => {
    expect(generateSigningKey('ops-2026-04').publicJwk.kid).toBe('ops-2026-04');
    expect(() => generateSigningKey('with space')).toThrow(/kid/);
    expect(() => generateSigningKey('')).toThrow(/kid/);
  });

  it('computes the RFC 7638 thumbprint (RFC 8037 appendix A.3 example)', () => {
    expect(jwkThumbprint('11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo')).toBe(
      'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k',
    );
  });
});

describe('importSigningKey', () => {
  it('imports the private JWK and keeps its kid (default: the thumbprint)', () => {
    expect(importSigningKey(privateJwk).kid).toBe(publicJwk.kid);
    const { kid: _kid, ...noKid } = privateJwk;
    expect(importSigningKey(noKid).kid).toBe(jwkThumbprint(privateJwk.x));
    expect(importSigningKey(privateJwk).key.type).toBe('private');
  });

  const other = generateSigningKey().privateJwk;
  it.each([
    ['not an object', 'key', /not a JWK object/],
    ['a public key', publicJwk, /no private part "d"/],
    ['an X25519 key', { ...privateJwk, crv: 'X25519' }, /not an Ed25519 JWK/],
    ['a short d', { ...privateJwk, d: privateJwk.d.slice(0, 40) }, /no private part "d"/],
    ['a padded x', { ...privateJwk, x: `${privateJwk.x}=` }, /no public part "x"/],
    [
      'an x from another key',
      { ...privateJwk, x: other.x },
      /"x" is not the public half of its "d"/,
    ],
    ['a kid with a newline', { ...privateJwk, kid: 'a\nb' }, /"kid"/],
  ])('refuses %s without echoing key material', (_name, jwk, message) => {
    let text = '';
    try {
      importSigningKey(jwk);
    } catch (error) {
      text = (error as Error).message;
    }
    expect(text).toMatch(message);
    for (const secret of [privateJwk.d, other.d, privateJwk.x, other.x]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('mintCapabilityToken', () => {
  it('signs the documented header and claims, iat at the whole second', () => {
    const { token, claims, kid } = mintCapabilityToken(options({ jti: 'jti-1' }));
    const [h, p, s] = token.split('.') as [string, string, string];
    expect(decode(h)).toEqual({ alg: 'EdDSA', typ: 'agentpack-cap+jwt', kid: publicJwk.kid });
    expect(kid).toBe(publicJwk.kid);
    const iat = Math.floor(NOW_MS / 1000);
    expect(claims).toEqual({
      iss: 'agentpack-identity',
      aud: 'agentpack',
      sub: 'agent-a',
      scope: ['secrets/get'],
      iat,
      exp: iat + 300,
      jti: 'jti-1',
    });
    expect(decode(p)).toEqual(claims);
    expect(Buffer.from(s, 'base64url')).toHaveLength(64);
    expect(token).not.toContain(privateJwk.d);
  });

  it('makes a fresh random jti per token, and accepts an audience list', () => {
    const a = mintCapabilityToken(options({ audience: ['agentpack', 'other'] }));
    const b = mintCapabilityToken(options());
    expect(a.claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a.claims.jti).not.toBe(b.claims.jti);
    expect(a.claims.aud).toEqual(['agentpack', 'other']);
  });

  it('grants every delegable RPC and the token-only ones, narrowed or not', () => {
    const scope = GRANTABLE_RPCS.flatMap((rpc) => [rpc, `${rpc}:some.resource-1`]);
    expect(mintCapabilityToken(options({ scope })).claims.scope).toEqual(scope);
    expect(GRANTABLE_RPCS).toContain('delegate');
    expect(GRANTABLE_RPCS).not.toContain('agents/create');
  });

  it.each([
    ['a sub outside the agent id grammar', { sub: 'Agent A' }, /sub must be an agent id/],
    ['an empty scope', { scope: [] }, /scope must not be empty/],
    ['a scope entry outside the grammar', { scope: ['secrets/get:'] }, /not rpc\[:resource\]/],
    ['a bridge-only RPC', { scope: ['agents/create'] }, /agents\/create cannot be granted/],
    ['tokens/register', { scope: ['tokens/register'] }, /cannot be granted/],
    ['a ttl of 0', { ttlSeconds: 0 }, /ttl must be a whole number of seconds from 1 to 86400/],
    ['a ttl above a day', { ttlSeconds: 86_401 }, /ttl/],
    ['a fractional ttl', { ttlSeconds: 1.5 }, /ttl/],
    ['an empty issuer', { issuer: '' }, /issuer is empty/],
    ['an empty audience', { audience: '' }, /audience is empty/],
    ['an empty audience list', { audience: [] }, /audience is empty/],
    ['a jti over 128 characters', { jti: 'j'.repeat(129) }, /jti must be 1 to 128/],
    ['an empty jti', { jti: '' }, /jti/],
    ['a clock that is not a time', { nowMs: Number.NaN }, /nowMs/],
  ] as const)('refuses %s', (_name, overrides, message) => {
    expect(() => mintCapabilityToken(options(overrides as Partial<MintOptions>))).toThrow(message);
  });
});
