/**
 * Interoperability with independent implementations: tokens we mint verify with panva/jose,
 * tokens jose signs verify with ours, the well-known JWKS works as a jose key set, and
 * @noble/ed25519 (a separate Ed25519 implementation) agrees with node:crypto's signatures.
 */
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  importJWK,
  jwtVerify,
  SignJWT,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  generateSigningKey,
  mintCapabilityToken,
  type MintOptions,
} from '@agentpack-identity/protocol';
import { loadPinnedKeys, publicJwks } from '../functions/src/tokens/pinned-keys.js';
import { createTokenVerifier } from '../functions/src/tokens/verify.js';

// noble leaves the hash to the caller (README: "hashes.sha512"); node:crypto provides it.
ed.hashes.sha512 = (message: Uint8Array) =>
  new Uint8Array(createHash('sha512').update(message).digest());

const ISSUER = 'agentpack-identity';
const AUDIENCE = 'agentpack';
const TYP = 'agentpack-cap+jwt';
const NOW_MS = Date.parse('2026-03-01T12:00:00.000Z');
const NOW = NOW_MS / 1000;

const { privateJwk, publicJwk } = generateSigningKey();
const jwks = JSON.stringify({ keys: [publicJwk] });
const verifier = createTokenVerifier({
  keys: loadPinnedKeys(jwks),
  issuer: ISSUER,
  audience: AUDIENCE,
  maxTtlSeconds: 900,
  cacheSize: 0,
});

function mint(overrides: Partial<MintOptions> = {}) {
  return mintCapabilityToken({
    privateJwk,
    sub: 'agent-interop',
    scope: ['secrets/get:openai_key', 'secrets/list', 'delegate'],
    ttlSeconds: 300,
    issuer: ISSUER,
    audience: AUDIENCE,
    nowMs: NOW_MS,
    ...overrides,
  });
}

const joseOptions = {
  issuer: ISSUER,
  audience: AUDIENCE,
  typ: TYP,
  algorithms: ['EdDSA'],
  currentDate: new Date(NOW_MS),
};

describe('our tokens, verified by jose', () => {
  it('verifies with jwtVerify and importJWK, with the same claims and header', async () => {
    const { token, claims, kid } = mint();
    const key = await importJWK(publicJwk, 'EdDSA');
    const result = await jwtVerify(token, key, joseOptions);
    expect(result.payload).toEqual(claims);
    expect(result.protectedHeader).toEqual({ alg: 'EdDSA', typ: TYP, kid });
  });

  it('verifies through the well-known JWKS document as a jose key set', async () => {
    const { token } = mint({ audience: ['other', AUDIENCE] });
    const keySet = createLocalJWKSet(publicJwks(loadPinnedKeys(jwks)));
    const result = await jwtVerify(token, keySet, joseOptions);
    expect(result.payload.sub).toBe('agent-interop');
    expect(result.key).toBeDefined();
  });

  it('is refused by jose with another key, as by us', async () => {
    const { token } = mint();
    const other = await importJWK(generateSigningKey().publicJwk, 'EdDSA');
    await expect(jwtVerify(token, other, joseOptions)).rejects.toMatchObject({
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  it('uses the RFC 7638 thumbprint as the default kid, as jose computes it', async () => {
    expect(publicJwk.kid).toBe(await calculateJwkThumbprint(publicJwk, 'sha256'));
    expect(decodeProtectedHeader(mint().token).kid).toBe(publicJwk.kid);
  });
});

describe('jose tokens, verified by us', () => {
  async function joseToken(
    claims: Record<string, unknown>,
    header: Record<string, unknown> = {},
  ): Promise<string> {
    const key = await importJWK(privateJwk, 'EdDSA');
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: TYP, kid: publicJwk.kid, ...header })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('agent-jose')
      .setIssuedAt(NOW - 10)
      .setExpirationTime(NOW + 290)
      .setJti('jose-jti-1')
      .sign(key);
  }

  it('accepts a token signed by jose SignJWT', async () => {
    const token = await joseToken({ scope: ['secrets/get'] });
    expect(verifier.verify(token, NOW_MS)).toEqual({
      ok: true,
      kid: publicJwk.kid,
      claims: {
        iss: ISSUER,
        aud: AUDIENCE,
        sub: 'agent-jose',
        scope: ['secrets/get'],
        iat: NOW - 10,
        exp: NOW + 290,
        jti: 'jose-jti-1',
      },
    });
  });

  it('refuses a jose token without our typ, or with a crit header', async () => {
    expect(
      verifier.verify(await joseToken({ scope: ['secrets/get'] }, { typ: 'JWT' }), NOW_MS),
    ).toEqual({ ok: false, reason: 'bad_typ' });
    const crit = await joseToken({ scope: ['secrets/get'] }, { crit: ['b64'], b64: true });
    expect(verifier.verify(crit, NOW_MS)).toEqual({ ok: false, reason: 'crit' });
  });

  it('refuses a jose token whose scope is not a list', async () => {
    const token = await joseToken({ scope: 'secrets/get' });
    expect(verifier.verify(token, NOW_MS)).toEqual({ ok: false, reason: 'bad_claims' });
  });
});

describe('@noble/ed25519 as an independent Ed25519', () => {
  let seed: Uint8Array;
  let publicKey: Uint8Array;
  beforeAll(() => {
    seed = Buffer.from(privateJwk.d, 'base64url');
    publicKey = Buffer.from(publicJwk.x, 'base64url');
  });

  it('derives the same public key from our private key', () => {
    expect(Buffer.from(ed.getPublicKey(seed)).toString('base64url')).toBe(publicJwk.x);
  });

  it('verifies the signature of our tokens (strict RFC 8032 mode too)', () => {
    const { token } = mint();
    const dot = token.lastIndexOf('.');
    const input = Buffer.from(token.slice(0, dot));
    const signature = Buffer.from(token.slice(dot + 1), 'base64url');
    expect(ed.verify(signature, input, publicKey)).toBe(true);
    expect(ed.verify(signature, input, publicKey, { zip215: false })).toBe(true);
    const tampered = Buffer.from(input);
    tampered[tampered.length - 1] ^= 1;
    expect(ed.verify(signature, tampered, publicKey)).toBe(false);
  });

  it('signs byte for byte what node:crypto signs (Ed25519 is deterministic)', () => {
    const { token } = mint({ jti: 'fixed-jti' });
    const dot = token.lastIndexOf('.');
    const nobleSig = ed.sign(Buffer.from(token.slice(0, dot)), seed);
    expect(Buffer.from(nobleSig).toString('base64url')).toBe(token.slice(dot + 1));
  });

  it('a token signed by noble verifies with ours', () => {
    const header = Buffer.from(
      JSON.stringify({ alg: 'EdDSA', typ: TYP, kid: publicJwk.kid }),
    ).toString('base64url');
    const claims = {
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'agent-noble',
      scope: ['agents/get'],
      iat: NOW,
      exp: NOW + 60,
      jti: 'noble-1',
    };
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const sig = Buffer.from(ed.sign(Buffer.from(input), seed)).toString('base64url');
    expect(verifier.verify(`${input}.${sig}`, NOW_MS)).toEqual({
      ok: true,
      claims,
      kid: publicJwk.kid,
    });
  });
});
