/**
 * Subject tokens of `/auth/exchange`, unit level: the parser never throws and refuses every
 * malformed shape with a reason; the `*` glob of bound claims against a reference matcher; the
 * time, audience and bound-claim checks; the signature check never confusing key types.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkSubjectClaims,
  globMatch,
  parseSubjectToken,
  verifySubjectSignature,
  type ParsedSubjectToken,
} from '../functions/src/tokens/subject-token.js';

const b64 = (v: unknown) =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const NOW = 1_800_000_000;
const claims = {
  iss: 'https://issuer.example',
  sub: 'repo:acme/app:ref:refs/heads/main',
  aud: 'aud-1',
  exp: NOW + 300,
  iat: NOW,
};

function token(header: unknown, payload: unknown = claims, signature = 'AAAA'): string {
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

function parsed(text: string): ParsedSubjectToken {
  const result = parseSubjectToken(text);
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  return result;
}

describe('parseSubjectToken', () => {
  it('never throws, whatever the string, and refuses with a reason of the closed set', () => {
    const jwtish = fc
      .tuple(
        fc.oneof(fc.base64String(), fc.string(), fc.constant(b64({ alg: 'ES256' }))),
        fc.oneof(fc.base64String(), fc.string(), fc.constant(b64(claims))),
        fc.oneof(fc.base64String(), fc.string()),
      )
      .map((parts) => parts.join('.'));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), jwtish), (text) => {
        const result = parseSubjectToken(text);
        if (!result.ok) {
          expect(['malformed', 'unsupported_alg']).toContain(result.reason);
          if (text.length >= 8) expect(result.message).not.toContain(text);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses each malformed shape', () => {
    const cases: [string, string][] = [
      ['', 'malformed'],
      ['a.b', 'malformed'],
      ['a.b.c.d', 'malformed'],
      [token({ alg: 'none' }), 'unsupported_alg'],
      [token({ alg: 'HS256' }), 'unsupported_alg'],
      [token({ alg: 'ES384' }), 'unsupported_alg'],
      [token({ alg: 'es256' }), 'unsupported_alg'],
      [token({}), 'unsupported_alg'],
      [token({ alg: 'ES256', crit: ['b64'] }), 'malformed'],
      [token({ alg: 'ES256', kid: 5 }), 'malformed'],
      [token({ alg: 'ES256', kid: '' }), 'malformed'],
      [token({ alg: 'ES256', typ: 'agentpack-run+jwt' }), 'malformed'],
      [token({ alg: 'EdDSA', typ: 'agentpack-cap+jwt' }), 'malformed'],
      [token({ alg: 'ES256' }, [1, 2]), 'malformed'],
      [token({ alg: 'ES256' }, 'not json'), 'malformed'],
      [token({ alg: 'ES256' }, { ...claims, sub: undefined }), 'malformed'],
      [token({ alg: 'ES256' }, { ...claims, sub: 'x'.repeat(257) }), 'malformed'],
      [token({ alg: 'ES256' }, { ...claims, iss: 7 }), 'malformed'],
      [token({ alg: 'ES256' }, { ...claims, exp: '1800000300' }), 'malformed'],
      [token({ alg: 'ES256' }, { ...claims, exp: undefined }), 'malformed'],
      [token({ alg: 'ES256' }, claims, 'AAAA='), 'malformed'],
      [token({ alg: 'ES256' }, claims, ''), 'malformed'],
      [`${b64({ alg: 'ES256' })}=.${b64(claims)}.AAAA`, 'malformed'],
      [`${Buffer.from([0xff, 0xfe]).toString('base64url')}.${b64(claims)}.AAAA`, 'malformed'],
    ];
    for (const [text, reason] of cases) {
      const result = parseSubjectToken(text);
      expect(result.ok, text).toBe(false);
      if (!result.ok) expect(result.reason, text).toBe(reason);
    }
    expect(parseSubjectToken(token({ alg: 'RS256', kid: 'k', typ: 'JWT' })).ok).toBe(true);
  });
});

describe('globMatch', () => {
  /** The reference: `*` as `.*`, everything else escaped, anchored. */
  const reference = (pattern: string, value: string) =>
    new RegExp(
      `^${pattern
        .split('*')
        .map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
        .join('[\\s\\S]*')}$`,
    ).test(value);

  it('agrees with the reference matcher', () => {
    const chars = fc.constantFrom('a', 'b', '*', ':', '/', '.', '?', '\\', '[');
    fc.assert(
      fc.property(
        fc.string({ unit: chars, maxLength: 8 }),
        fc.string({
          unit: fc.constantFrom('a', 'b', ':', '/', '.', '?', '\\', '[', '*'),
          maxLength: 10,
        }),
        (pattern, value) => {
          expect(globMatch(pattern, value)).toBe(reference(pattern, value));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('matches what operators write, and nothing wider', () => {
    expect(globMatch('repo:acme/*:ref:refs/heads/main', 'repo:acme/app:ref:refs/heads/main')).toBe(
      true,
    );
    expect(globMatch('repo:acme/*:ref:refs/heads/main', 'repo:acme/app:ref:refs/heads/dev')).toBe(
      false,
    );
    expect(globMatch('repo:acme/*', 'repo:acmecorp/x')).toBe(false);
    expect(globMatch('system:serviceaccount:ns:*', 'system:serviceaccount:ns:')).toBe(true);
    expect(globMatch('a.c', 'abc')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('', 'x')).toBe(false);
  });
});

describe('checkSubjectClaims', () => {
  const rules = {
    audiences: ['aud-1', 'aud-2'],
    bound_claims: { sub: 'repo:acme/*', env: ['prod', 'stage'] },
  };
  const ok = { ...claims, sub: 'repo:acme/app', env: 'prod' };
  const at = (s: number) => s * 1000;

  it('passes a good token and applies 30 s of skew to exp, nbf and iat', () => {
    expect(checkSubjectClaims(ok, rules, at(NOW))).toBeNull();
    expect(checkSubjectClaims(ok, rules, at(NOW + 300 + 29))).toBeNull();
    expect(checkSubjectClaims(ok, rules, at(NOW + 300 + 30))?.reason).toBe('expired');
    expect(checkSubjectClaims({ ...ok, nbf: NOW + 30 }, rules, at(NOW))).toBeNull();
    expect(checkSubjectClaims({ ...ok, nbf: NOW + 31 }, rules, at(NOW))?.reason).toBe(
      'not_yet_valid',
    );
    expect(checkSubjectClaims({ ...ok, iat: NOW + 31 }, rules, at(NOW))?.reason).toBe(
      'not_yet_valid',
    );
    expect(checkSubjectClaims({ ...ok, nbf: 'soon' }, rules, at(NOW))?.reason).toBe('malformed');
  });

  it('needs an audience of the role, string or list', () => {
    expect(checkSubjectClaims({ ...ok, aud: ['x', 'aud-2'] }, rules, at(NOW))).toBeNull();
    for (const aud of ['x', ['x'], [], undefined, 5, [5], { 0: 'aud-1' }]) {
      expect(checkSubjectClaims({ ...ok, aud }, rules, at(NOW))?.reason).toBe('wrong_audience');
    }
  });

  it('needs every bound claim as a matching string, never an inherited or non-string value', () => {
    const mismatch = (c: Record<string, unknown>) => checkSubjectClaims(c, rules, at(NOW));
    expect(mismatch({ ...ok, env: 'dev' })).toMatchObject({
      reason: 'claim_mismatch',
      claim: 'env',
    });
    expect(mismatch({ ...ok, env: ['prod'] })?.claim).toBe('env');
    expect(mismatch({ ...ok, env: undefined })?.claim).toBe('env');
    expect(mismatch({ ...ok, sub: 'repo:other/app' })?.claim).toBe('sub');
    const proto = { audiences: ['aud-1'], bound_claims: { constructor: '*', toString: '*' } };
    expect(checkSubjectClaims(ok, proto, at(NOW))?.reason).toBe('claim_mismatch');
    expect(
      checkSubjectClaims(
        { ...ok, env: 'p'.repeat(1025) },
        { audiences: ['aud-1'], bound_claims: { env: '*' } },
        at(NOW),
      )?.reason,
    ).toBe('claim_mismatch');
  });
});

describe('verifySubjectSignature', () => {
  const input = (alg: string) => `${b64({ alg, kid: 'k' })}.${b64(claims)}`;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ed = generateKeyPairSync('ed25519');
  const signed = {
    RS256: `${input('RS256')}.${sign('sha256', Buffer.from(input('RS256')), rsa.privateKey).toString('base64url')}`,
    ES256: `${input('ES256')}.${sign('sha256', Buffer.from(input('ES256')), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`,
    EdDSA: `${input('EdDSA')}.${sign(null, Buffer.from(input('EdDSA')), ed.privateKey).toString('base64url')}`,
  };
  const keys = { RS256: rsa.publicKey, ES256: ec.publicKey, EdDSA: ed.publicKey };

  it('verifies each algorithm with its own key type only', () => {
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      for (const keyAlg of ['RS256', 'ES256', 'EdDSA'] as const) {
        expect(
          verifySubjectSignature(parsed(signed[alg]), keys[keyAlg]),
          `${alg} with ${keyAlg}`,
        ).toBe(alg === keyAlg);
      }
    }
  });

  it('refuses a DER ECDSA signature, a P-384 key and a changed payload', () => {
    const der = sign('sha256', Buffer.from(input('ES256')), ec.privateKey).toString('base64url');
    expect(verifySubjectSignature(parsed(`${input('ES256')}.${der}`), ec.publicKey)).toBe(false);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(verifySubjectSignature(parsed(signed.ES256), p384.publicKey)).toBe(false);
    const [h, , s] = signed.EdDSA.split('.');
    const changed = `${h}.${b64({ ...claims, sub: 'other' })}.${s}`;
    expect(verifySubjectSignature(parsed(changed), ed.publicKey)).toBe(false);
  });
});
