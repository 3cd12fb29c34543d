/** Identifier grammars of the API, in one place so schemas and core agree. */
import { randomBytes } from 'node:crypto';

/** Agent ids: lowercase, 3 to 63 characters, starting with a letter or digit. */
export const AGENT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{2,62}$/;

/** Device key handles as minted by {@link generateKeyId} in the auth layer. */
export const KEY_ID_PATTERN = /^dk_[A-Za-z0-9_-]{16}$/;

const AGENT_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh agent id (`agent-` + 20 random characters of [a-z0-9]). */
export function generateAgentId(): string {
  const bytes = randomBytes(20);
  let id = 'agent-';
  // 256 is not a multiple of 36, so a tiny bias remains; ids need uniqueness, not uniformity.
  for (const b of bytes) id += AGENT_ID_ALPHABET[b % AGENT_ID_ALPHABET.length];
  return id;
}
