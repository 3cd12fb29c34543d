/**
 * The field schemas every request is built from, from the grammars of the API. The service
 * validates with them and clients type their calls by them: one source of truth.
 */
import { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  DELEGATION_ID_PATTERN,
  FINGERPRINT_PATTERN,
  KEY_ID_PATTERN,
  RUN_ID_PATTERN,
  SECRET_NAME_PATTERN,
} from '../grammar.js';

export const agentIdField = z
  .string()
  .regex(AGENT_ID_PATTERN, 'agent_id must match ^[a-z0-9][a-z0-9_-]{2,62}$');

export const keyIdField = z.string().regex(KEY_ID_PATTERN, 'key_id is not a device key id');

export const runIdField = z.string().regex(RUN_ID_PATTERN, 'run_id is not a run id');

export const delegationIdField = z
  .string()
  .regex(DELEGATION_ID_PATTERN, 'delegation_id is not a delegation id');

export const fingerprintField = z
  .string()
  .regex(FINGERPRINT_PATTERN, 'expected_fingerprint must be SHA256: + 43 base64url characters');

export const secretNameField = z
  .string()
  .regex(SECRET_NAME_PATTERN, 'name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$');

/** A secret version: a positive whole number. */
export const versionField = z
  .number()
  .int()
  .positive()
  .max(2 ** 31);

/** One to 100 versions. */
export const versionsField = z.array(versionField).min(1).max(100);

/** A positive whole number of seconds. */
export const ttlSecondsField = z.number().int().positive();

/** A scope: 1 to 32 entries `rpc` or `rpc:resource` (the grammar is checked by the service). */
export const scopeField = z.array(z.string().max(200)).min(1).max(32);

/** A raw 32-byte public key as unpadded base64url (its curve checks are the service's). */
export const publicKeyField = z.string().max(100);

/** A lowercase hex SHA-256. */
export const sha256HexField = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');

/**
 * Text without what no text field may hold: control characters (general category Cc), format
 * characters (Cf: bidi overrides and isolates such as U+202E, zero-width characters such as
 * U+200B and U+200D, U+FEFF, ...) and line and paragraph separators (Zl U+2028, Zp U+2029).
 * Each changes how the text around it reads — reversed, split, joined or hidden — without being
 * seen itself, so an operator reading a name, label or task in a list, a log or the audit could
 * be misled.
 */
export const VISIBLE_TEXT = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u;

/**
 * A free-text field a person reads (a display name, a label, a task): 1–`max` characters (after
 * trimming, with `trim`), none of them refused by {@link VISIBLE_TEXT}. The characters are
 * checked before trimming, so one is refused even where trimming would drop it (U+FEFF and the
 * separators count as white space). Every text field of every request is built here, so the
 * rule lives in one place; messages name the field, never the value.
 */
export function textField(field: string, options: { max: number; trim?: boolean }) {
  const visible = z
    .string()
    .regex(
      VISIBLE_TEXT,
      `${field} must not contain control characters, format characters (such as bidi overrides or zero-width characters) or line or paragraph separators`,
    );
  return (
    (options.trim === true ? visible.trim() : visible)
      .min(1, `${field} must not be empty`)
      .max(options.max, `${field} must be at most ${options.max} characters`)
      // The JSON Schema pattern, written out: the OpenAPI generator renders a regex with a flag
      // (here `u`) as `<source>/u`, which would match nothing.
      .meta({ pattern: VISIBLE_TEXT.source })
  );
}

/** A short human label: 1–128 characters of visible text. */
export const labelField = textField('label', { max: 128 });

/** An agent's display name: 1–200 characters of visible text, trimmed. */
export const displayNameField = textField('display_name', { max: 200, trim: true });

/** What a run is for: 1–200 characters of visible text. */
export const taskField = textField('task', { max: 200 });

/** The body of a route that takes nothing (a GET, or an RPC without arguments): `{}` only. */
export const emptyRequest = z.strictObject({});
