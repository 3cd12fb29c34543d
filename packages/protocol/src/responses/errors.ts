/**
 * The error object of every failure: `{error: {code, message, details?}}`. The codes are the
 * contract's closed set; the service maps each to its HTTP status in one table (the service's
 * core/errors.ts, which a test holds equal to this list).
 */
import { z } from 'zod';

export const API_ERROR_CODES = [
  'invalid_argument',
  'unauthenticated',
  'permission_denied',
  'not_found',
  'method_not_allowed',
  'already_exists',
  'failed_precondition',
  'payload_too_large',
  'unsupported_media_type',
  'resource_exhausted',
  'internal',
  'unavailable',
] as const;

export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/** Safe extra facts about an error (never a key, a secret or a stack). */
export const errorDetailsField = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]))
  .meta({ id: 'ErrorDetails' });

/** The error object, with its `code` among `codes` (e.g. the codes of one HTTP status). */
export function errorResponseOf<const C extends readonly [ApiErrorCode, ...ApiErrorCode[]]>(
  codes: C,
) {
  return z.strictObject({
    error: z.strictObject({
      code: z.enum(codes),
      message: z.string(),
      details: errorDetailsField.optional(),
    }),
  });
}

/** The error object with any code of the API. */
export const errorResponse = errorResponseOf(API_ERROR_CODES).meta({ id: 'Error' });
