/**
 * A test signing key and a minimal, independent minter of capability tokens (plain node:crypto,
 * not the project's minter), so the API tests do not depend on the code under test to make
 * their credentials.
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
export const TEST_KID = 'test-key-1';
export const TEST_JWKS = JSON.stringify({
  keys: [{ ...publicKey.export({ format: 'jwk' }), kid: TEST_KID, alg: 'EdDSA', use: 'sig' }],
});

export interface MintOptions {
  sub: string;
  scope: string[];
  nowMs: number;
  ttlSeconds?: number;
  iss?: string;
  aud?: string | string[];
  jti?: string;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export function mintTestToken(o: MintOptions): string {
  const iat = Math.floor(o.nowMs / 1000);
  const header = { alg: 'EdDSA', typ: 'agentpack-cap+jwt', kid: TEST_KID };
  const claims = {
    iss: o.iss ?? 'agentpack-identity',
    aud: o.aud ?? 'agentpack',
    sub: o.sub,
    scope: o.scope,
    iat,
    exp: iat + (o.ttlSeconds ?? 300),
    jti: o.jti ?? randomUUID(),
  };
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
