/**
 * The field schemas every response is built from. Response schemas describe exactly what the
 * service answers: objects are strict (a field the service never sends is refused), so the
 * OpenAPI document made from them, and a client that checks an answer against them, tell the
 * truth about the wire.
 */
import { z } from 'zod';
import { runIdField } from '../requests/fields.js';
import { cursorField } from '../requests/lists.js';

/**
 * A time as the service writes it: RFC 3339 in UTC (`Date#toISOString`, e.g.
 * `2026-01-01T00:00:00.000Z`). Not a named component: the generator would describe a nullable
 * reference as `allOf` (refusing null).
 */
export const timeField = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/)
  .meta({ description: 'RFC 3339, UTC' });

/** A count of things changed or kept: a whole number, zero or more. */
export const countField = z.number().int().nonnegative();

/** A secret version in an answer: a positive whole number. */
export const versionNumber = z.number().int().positive();

/** Unpadded base64url (a sealed box, a key). */
export const base64urlField = z.string().regex(/^[A-Za-z0-9_-]*$/);

/** A compact JWS (a JWT): three base64url segments. */
export const jwtField = z.string().regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

/** The cursor of the next page of a list, or null on the last page. */
export const nextCursorField = cursorField.nullable().meta({
  description: 'The cursor of the next page (pass it back as `cursor`), or null on the last page.',
});

/** A list of run ids. */
export const runIdsField = z.array(runIdField);
