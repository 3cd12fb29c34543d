/**
 * A key-encryption key held in memory, loaded from a file in the data dir (embedded mode) or
 * from the `AGENTPACK_SECRETS_KEK` secret (Cloud Functions). Data keys are wrapped with
 * AES-256-GCM under it. `kek_ref` names the key by a digest, so a wrong key is detected before
 * any decryption is attempted, and fails loudly.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { loadKeyFile, parseKey32 } from '../config/key-file.js';
import type { Keyring } from '../ports/keyring.js';

const WRAP_AAD_PREFIX = Buffer.from('agentpack-wrap-v1\n');

/** Parses a KEK: 32 bytes as unpadded base64url (43 characters). */
export function parseKek(text: string, source: string): Buffer {
  return parseKey32(text, source, 'key-encryption key');
}

/** A keyring over one key-encryption key. */
export function localKeyring(kek: Buffer): Keyring {
  const ref = `local:${createHash('sha256').update(kek).digest('hex').slice(0, 16)}`;
  return {
    primaryRef: async () => ref,
    async wrap(dataKey, aad) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', kek, iv);
      cipher.setAAD(Buffer.concat([WRAP_AAD_PREFIX, aad]));
      const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
      return {
        wrapped: Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url'),
        kek_ref: ref,
      };
    },
    async unwrap(wrapped, kekRef, aad) {
      if (kekRef !== ref) {
        throw new Error(`data key was wrapped by ${kekRef}, but the configured key is ${ref}`);
      }
      const raw = Buffer.from(wrapped, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', kek, raw.subarray(0, 12));
      decipher.setAAD(Buffer.concat([WRAP_AAD_PREFIX, aad]));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
    },
  };
}

/**
 * Loads the KEK file, creating it (mode 0600) when `mayCreate` (a data dir with no secrets
 * yet). Refuses a file others can read.
 */
export function loadKekFile(file: string, mayCreate: boolean): Buffer {
  return loadKeyFile(file, {
    what: 'key-encryption key',
    mayCreate,
    missing: 'the store holds secrets: restore the key file',
  });
}
