/**
 * 32-byte keys given as unpadded base64url: parsed from configuration, or kept in a file of the
 * data dir (embedded mode) that is created 0600 on first use and refused when others can read
 * it. The secrets KEK and the digest key both live this way.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { assertPrivateFile } from './owner-only-file.js';

/** Parses a 32-byte key written as unpadded base64url (43 characters). */
export function parseKey32(text: string, source: string, what: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64url');
  if (!/^[A-Za-z0-9_-]{43}$/.test(trimmed) || key.length !== 32) {
    throw new Error(`${source}: the ${what} must be 32 bytes as unpadded base64url`);
  }
  return key;
}

/**
 * Loads a key file, creating it (mode 0600, a fresh random key) when it is missing and
 * `mayCreate`; a missing file otherwise fails with `missing` (data written under a lost key must
 * fail loudly, never be silently re-keyed).
 */
export function loadKeyFile(
  file: string,
  options: { what: string; mayCreate: boolean; missing: string },
): Buffer {
  if (!existsSync(file)) {
    if (!options.mayCreate) throw new Error(`${file} is missing: ${options.missing}`);
    const key = randomBytes(32);
    writeFileSync(file, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  }
  assertPrivateFile(file);
  return parseKey32(readFileSync(file, 'utf8'), file, options.what);
}
