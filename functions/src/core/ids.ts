/**
 * Where every identifier the service hands out is minted: agent ids (when none is chosen),
 * device key handles, delegation, enrollment and run ids. Bearer secrets (device keys, enrollment
 * codes) are made by their formats in the protocol package, where the grammars live too, so the schemas, the core and the CLI agree.
 */
import { randomBytes } from 'node:crypto';

const AGENT_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh agent id (`agent-` + 20 random characters of [a-z0-9]). */
export function generateAgentId(): string {
  const bytes = randomBytes(20);
  let id = 'agent-';
  // 256 is not a multiple of 36, so a tiny bias remains; ids need uniqueness, not uniformity.
  for (const b of bytes) id += AGENT_ID_ALPHABET[b % AGENT_ID_ALPHABET.length];
  return id;
}

/** A fresh public handle for a device key (`dk_` + 96 random bits), to list and revoke it. */
export function generateKeyId(): string {
  return `dk_${randomBytes(12).toString('base64url')}`;
}

/** A fresh delegation id (`dg_` + 128 random bits). */
export function generateDelegationId(): string {
  return `dg_${randomBytes(16).toString('base64url')}`;
}

/** A fresh enrollment id (`en_` + 96 random bits); the code itself is a separate secret. */
export function generateEnrollmentId(): string {
  return `en_${randomBytes(12).toString('base64url')}`;
}

/** A fresh run id (`run_` + 128 random bits), matching `RUN_ID_PATTERN`. */
export function generateRunId(): string {
  return `run_${randomBytes(16).toString('base64url')}`;
}

/**
 * The order of a document in a list: its creation time, then its unique id, so that documents
 * created in the same millisecond still have one stable order and a cursor never skips one.
 */
export function listKey(createdAt: string, id: string): string {
  return `${createdAt}|${id}`;
}
