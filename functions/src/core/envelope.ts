/**
 * Envelope encryption of secret values: a fresh 256-bit data key per version, AES-256-GCM with
 * the record's identity (agent, name, version) as associated data, the data key wrapped by the
 * {@link Keyring}. A ciphertext moved to another record, or a wrong key, fails to open: it
 * never returns garbage.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Keyring } from '../ports/keyring.js';

export interface SealedValue {
  ciphertext: string;
  iv: string;
  tag: string;
  wrapped_key: string;
  kek_ref: string;
}

/** The associated data binding a ciphertext to its record. */
export function recordAad(agentId: string, name: string, version: number): Buffer {
  return Buffer.from(`agentpack-secret-v1\n${agentId}\n${name}\n${version}`, 'utf8');
}

/** Encrypts `value` under a fresh data key and wraps the data key. */
export async function sealValue(
  keyring: Keyring,
  value: string,
  aad: Buffer,
): Promise<SealedValue> {
  const dataKey = randomBytes(32);
  try {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    const { wrapped, kek_ref } = await keyring.wrap(dataKey, aad);
    return {
      ciphertext: ciphertext.toString('base64url'),
      iv: iv.toString('base64url'),
      tag: cipher.getAuthTag().toString('base64url'),
      wrapped_key: wrapped,
      kek_ref,
    };
  } finally {
    dataKey.fill(0);
  }
}

/** Unwraps the data key and decrypts; throws if anything does not authenticate. */
export async function openValue(
  keyring: Keyring,
  sealed: SealedValue,
  aad: Buffer,
): Promise<string> {
  const dataKey = await keyring.unwrap(sealed.wrapped_key, sealed.kek_ref, aad);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(sealed.iv, 'base64url'));
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
    const plain = Buffer.concat([
      decipher.update(Buffer.from(sealed.ciphertext, 'base64url')),
      decipher.final(),
    ]);
    return plain.toString('utf8');
  } finally {
    dataKey.fill(0);
  }
}
