/**
 * Development keys generated into the data dir on first start, so `npm start` works on a fresh
 * clone: the bridge key and the capability signing key (the secrets key file is the keyring's). Each file is created with mode 0600 and never overwritten; the key itself is never
 * printed, only the file's path.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertPrivateFile } from '../config/owner-only-file.js';
import { generateSigningKey, importSigningKey } from '@agentpack-identity/protocol';

export const DEV_BRIDGE_KEY_FILE = 'bridge-key';

/**
 * Returns the dev bridge key from `<dataDir>/bridge-key`, creating it (256 random bits) when
 * absent. Refuses a file that others can read.
 */
export function ensureDevBridgeKey(dataDir: string): {
  key: string;
  file: string;
  created: boolean;
} {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DEV_BRIDGE_KEY_FILE);
  if (existsSync(file)) {
    assertPrivateFile(file);
    return { key: readFileSync(file, 'utf8').trim(), file, created: false };
  }
  const key = `apbk_${randomBytes(32).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { key, file, created: true };
}

export const DEV_SIGNING_KEY_FILE = 'capability-signing-key.jwk';

/**
 * Returns the public JWKS of the dev capability signing key in `<dataDir>`, creating the
 * private JWK (mode 0600) when absent, so `npx agentpack-identity token mint --key
 * .data/capability-signing-key.jwk ...` works out of the box. Only the public half is pinned.
 */
export function ensureDevSigningKey(dataDir: string): {
  jwks: string;
  file: string;
  created: boolean;
} {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DEV_SIGNING_KEY_FILE);
  let created = false;
  if (!existsSync(file)) {
    const { privateJwk } = generateSigningKey();
    writeFileSync(file, `${JSON.stringify(privateJwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    created = true;
  }
  assertPrivateFile(file);
  const { kid, x } = importSigningKey(JSON.parse(readFileSync(file, 'utf8')) as unknown);
  const publicJwk = { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' };
  return { jwks: JSON.stringify({ keys: [publicJwk] }), file, created };
}
