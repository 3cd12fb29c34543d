/** Field schemas shared by routes, built from the grammars in the API contract. */
import { z } from 'zod';
import { AGENT_ID_PATTERN, KEY_ID_PATTERN } from '@agentpack-identity/protocol';

export const agentIdSchema = z
  .string()
  .regex(AGENT_ID_PATTERN, 'agent_id must match ^[a-z0-9][a-z0-9_-]{2,62}$');

export const keyIdSchema = z.string().regex(KEY_ID_PATTERN, 'key_id is not a device key id');

/**
 * Text without what no text field may hold: control characters (general category Cc), format
 * characters (Cf: bidi overrides and isolates such as U+202E, zero-width characters such as
 * U+200B and U+200D, U+FEFF, ...) and line and paragraph separators (Zl U+2028, Zp U+2029).
 * Each changes how the text around it reads — reversed, split, joined or hidden — without being
 * seen itself, so an operator reading a name, label or task in a list, a log or the audit could
 * be misled.
 */
const VISIBLE_TEXT = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u;

/**
 * A free-text field a person reads (a display name, a label, a task): 1–`max` characters (after
 * trimming, with `trim`), none of them refused by {@link VISIBLE_TEXT}. The characters are
 * checked before trimming, so one is refused even where trimming would drop it (U+FEFF and the
 * separators count as white space). Every text field of every route is built here, so the rule
 * lives in one place; messages name the field, never the value.
 */
export function textSchema(field: string, options: { max: number; trim?: boolean }) {
  const visible = z
    .string()
    .regex(
      VISIBLE_TEXT,
      `${field} must not contain control characters, format characters (such as bidi overrides or zero-width characters) or line or paragraph separators`,
    );
  return (options.trim === true ? visible.trim() : visible)
    .min(1, `${field} must not be empty`)
    .max(options.max, `${field} must be at most ${options.max} characters`);
}

/** A short human label: 1–128 characters of visible text. */
export const labelSchema = textSchema('label', { max: 128 });

/** An agent's display name: 1–200 characters of visible text, trimmed. */
export const displayNameSchema = textSchema('display_name', { max: 200, trim: true });

/** What a run is for: 1–200 characters of visible text. */
export const taskSchema = textSchema('task', { max: 200 });

/** A positive whole number of seconds. */
export const ttlSecondsSchema = z.number().int().positive();
