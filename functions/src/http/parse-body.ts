/**
 * Turns a raw POST body into a JSON object, or an {@link ApiError}: 413 above 64 KiB, 415 for
 * anything but `application/json` (UTF-8), 400 for invalid UTF-8, malformed JSON or a body that
 * is not a JSON object.
 */
import { ApiError } from '../core/errors.js';
import { MAX_BODY_BYTES, type HttpRequest } from '../ports/http.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** With the `u` flag this matches only unpaired surrogates. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Checks the media type: `application/json`, optionally with `charset=utf-8`. */
function checkContentType(values: readonly string[] | undefined): void {
  if (values === undefined || values.length !== 1) {
    throw new ApiError('unsupported_media_type', 'content-type must be application/json');
  }
  const [type, ...params] = (values[0] ?? '').split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json') {
    throw new ApiError('unsupported_media_type', 'content-type must be application/json');
  }
  for (const param of params) {
    if (param === '') continue;
    const [name, value] = param.split('=').map((p) => p.trim().replace(/^"|"$/g, ''));
    if (name === 'charset' && value !== 'utf-8' && value !== 'utf8') {
      throw new ApiError('unsupported_media_type', 'only UTF-8 JSON is accepted');
    }
  }
}

/** The body of a POST as a plain JSON object. */
export function parseJsonObjectBody(req: HttpRequest): Record<string, unknown> {
  if (req.bodyTooLarge === true || req.body.length > MAX_BODY_BYTES) {
    throw new ApiError('payload_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`, {
      max_bytes: MAX_BODY_BYTES,
    });
  }
  checkContentType(req.headers['content-type']);
  let text: string;
  try {
    text = utf8.decode(req.body);
  } catch {
    throw new ApiError('invalid_argument', 'the body is not valid UTF-8');
  }
  let value: unknown;
  let loneSurrogate = false;
  try {
    // Policy: a string with a lone surrogate (`"\ud800"`) is not Unicode text and would be
    // silently changed on its way to UTF-8 storage; refuse it instead of storing something else.
    value = JSON.parse(text, (key, v: unknown) => {
      if (LONE_SURROGATE.test(key) || (typeof v === 'string' && LONE_SURROGATE.test(v)))
        loneSurrogate = true;
      return v;
    });
  } catch {
    throw new ApiError('invalid_argument', 'the body is not valid JSON');
  }
  if (loneSurrogate) {
    throw new ApiError(
      'invalid_argument',
      'the body holds a string that is not valid Unicode (a lone surrogate)',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError('invalid_argument', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}
