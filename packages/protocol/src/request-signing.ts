/**
 * Signed requests (proof of possession by an enrolled device or a run): the header names, the
 * nonce and timestamp grammar, the string that is signed, and signing and verifying it. The
 * service, the CLI and the tests all sign and check exactly these bytes.
 *
 * Policy: a request that carries a delegation (`x-agentpack-delegation`) signs it too (the v2
 * string), so nobody on the path can add a delegation to a signed request and make it act for
 * the delegator; a v1 signature never verifies for a delegated request, nor a v2 one for an
 * undelegated request.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { decodeBase64Url } from './base64url.js';
import { CREDENTIAL_HEADERS, CREDENTIAL_VALUE_PATTERN } from './grammar.js';
import { signText, verifyText } from './signatures.js';

/** The header names of a signed request. */
export const SIGNED_REQUEST_HEADERS = {
  timestamp: 'x-agentpack-timestamp',
  nonce: 'x-agentpack-nonce',
  signature: 'x-agentpack-signature',
} as const;

/** The first line of the string a device signs for a request; a version, so it can change. */
export const REQUEST_SIGNING_CONTEXT = 'agentpack-request-v1';

/** The first line of the string signed for a request that carries a delegation (its id is the last line). */
export const DELEGATED_REQUEST_SIGNING_CONTEXT = 'agentpack-request-v2';

/** The replay window: a timestamp may be this far from the server's clock, either way. */
export const SIGNATURE_WINDOW_SECONDS = 60;

/** Random bytes in a nonce made by {@link signRequest}: 18 bytes are 24 base64url characters. */
const NONCE_BYTES = 18;
/** A nonce must carry at least 16 random bytes; more than 96 is a mistake or abuse. */
export const MIN_NONCE_BYTES = 16;
export const MAX_NONCE_BYTES = 96;

/** True when `nonce` is canonical base64url of 16 to 96 bytes. */
export function isWellFormedNonce(nonce: unknown): boolean {
  return decodeBase64Url(nonce, MIN_NONCE_BYTES, MAX_NONCE_BYTES) !== null;
}

/** The parts of a request that its signature covers. */
export interface RequestSigningParts {
  /** The HTTP method, upper case (`POST`). */
  method: string;
  /** The route path as the API names it (`/secrets/get`), starting with `/`. */
  path: string;
  /** Unix seconds, as sent in `x-agentpack-timestamp`. */
  timestamp: string;
  /** As sent in `x-agentpack-nonce`: canonical base64url of 16 to 96 bytes. */
  nonce: string;
  /** The raw request body, exactly the bytes sent. */
  body: Uint8Array;
  /**
   * The delegation id, as sent in `x-agentpack-delegation`, when the request carries one: the
   * v2 string is then signed, with it as its last line. Absent: the v1 string.
   */
  delegation?: string | undefined;
}

const METHOD_PATTERN = /^[A-Z]{1,16}$/;
/** Printable ASCII without spaces: a path cannot carry a line break into the signed string. */
const PATH_PATTERN = /^\/[\x21-\x7e]{0,2047}$/;
/** Unix seconds, as sent in `x-agentpack-timestamp`. */
export const TIMESTAMP_PATTERN = /^[0-9]{1,12}$/;

/** Why the parts cannot be signed, or null. Policy: every field is one line, so the string has exactly one reading. */
function requestPartsProblem(parts: RequestSigningParts): string | null {
  if (typeof parts.method !== 'string' || !METHOD_PATTERN.test(parts.method)) {
    return 'method must be an upper-case HTTP method';
  }
  if (typeof parts.path !== 'string' || !PATH_PATTERN.test(parts.path)) {
    return 'path must start with / and be printable ASCII without spaces';
  }
  if (typeof parts.timestamp !== 'string' || !TIMESTAMP_PATTERN.test(parts.timestamp)) {
    return 'timestamp must be unix seconds';
  }
  if (!isWellFormedNonce(parts.nonce)) {
    return `nonce must be canonical base64url of ${MIN_NONCE_BYTES} to ${MAX_NONCE_BYTES} bytes`;
  }
  if (!(parts.body instanceof Uint8Array)) return 'body must be bytes';
  if (
    parts.delegation !== undefined &&
    (typeof parts.delegation !== 'string' || !CREDENTIAL_VALUE_PATTERN.test(parts.delegation))
  ) {
    return 'delegation must be printable ASCII without spaces';
  }
  return null;
}

/**
 * The string a device signs for a request:
 * `agentpack-request-v1\n<METHOD>\n<path>\n<timestamp>\n<nonce>\n<base64url(SHA-256(body))>`,
 * or for a request that carries a delegation
 * `agentpack-request-v2\n<METHOD>\n<path>\n<timestamp>\n<nonce>\n<base64url(SHA-256(body))>\n<delegation_id>`.
 * Throws a TypeError when a part is malformed (a field with a line break would make two
 * requests sign alike).
 */
export function requestSigningString(parts: RequestSigningParts): string {
  const problem = requestPartsProblem(parts);
  if (problem !== null) throw new TypeError(`cannot sign this request: ${problem}`);
  const bodyHash = createHash('sha256').update(parts.body).digest('base64url');
  const lines = [parts.method, parts.path, parts.timestamp, parts.nonce, bodyHash];
  return parts.delegation === undefined
    ? [REQUEST_SIGNING_CONTEXT, ...lines].join('\n')
    : [DELEGATED_REQUEST_SIGNING_CONTEXT, ...lines, parts.delegation].join('\n');
}

/**
 * The three headers that make a request signed, and the delegation header when the request was
 * signed for one (send it as is: the signature covers it).
 */
export interface SignedRequestHeaders {
  'x-agentpack-timestamp': string;
  'x-agentpack-nonce': string;
  'x-agentpack-signature': string;
  'x-agentpack-delegation'?: string;
}

/** What {@link signRequest} needs. */
export interface SignRequestInput {
  method: string;
  path: string;
  /** The exact body bytes to send (a string is taken as UTF-8). */
  body: Uint8Array | string;
  /** The device's 32-byte Ed25519 seed, or a KeyObject from {@link ed25519PrivateKeyObject}. */
  signingSeed: Uint8Array | KeyObject;
  /** Milliseconds since the Unix epoch (the timestamp is its whole seconds). */
  nowMs: number;
  /** A nonce to use instead of 18 fresh random bytes (tests; never reuse one). */
  nonce?: string;
  /** The delegation id the request presents, if any: the v2 string is then signed. */
  delegation?: string | undefined;
}

/**
 * Signs a request as an enrolled device and returns the headers to add: the timestamp (unix
 * seconds), a fresh nonce (18 random bytes, 24 base64url characters) and the Ed25519
 * signature over {@link requestSigningString}. The method is upper-cased first. With a
 * `delegation`, the v2 string is signed and the answer carries `x-agentpack-delegation` too.
 *
 * @example
 * const body = JSON.stringify({ name: 'openai_key' });
 * const headers = signRequest({ method: 'POST', path: '/secrets/get', body, signingSeed, nowMs: Date.now() });
 */
export function signRequest(input: SignRequestInput): SignedRequestHeaders {
  if (!Number.isFinite(input.nowMs) || input.nowMs < 0) throw new TypeError('nowMs must be a time');
  const timestamp = String(Math.floor(input.nowMs / 1000));
  const nonce = input.nonce ?? randomBytes(NONCE_BYTES).toString('base64url');
  const body = typeof input.body === 'string' ? Buffer.from(input.body, 'utf8') : input.body;
  const text = requestSigningString({
    method: input.method.toUpperCase(),
    path: input.path,
    timestamp,
    nonce,
    body,
    delegation: input.delegation,
  });
  const headers: SignedRequestHeaders = {
    [SIGNED_REQUEST_HEADERS.timestamp]: timestamp,
    [SIGNED_REQUEST_HEADERS.nonce]: nonce,
    [SIGNED_REQUEST_HEADERS.signature]: signText(text, input.signingSeed),
  };
  if (input.delegation !== undefined) headers[CREDENTIAL_HEADERS.delegation] = input.delegation;
  return headers;
}

/**
 * True when `signature` (base64url) is the Ed25519 signature of {@link requestSigningString}
 * of `parts` by `publicKey`. Never throws: malformed parts, a signature that is not canonical
 * base64url of exactly 64 bytes, or a key of another type all give false.
 */
export function verifyRequestSignature(
  publicKey: KeyObject,
  parts: RequestSigningParts,
  signature: string,
): boolean {
  if (requestPartsProblem(parts) !== null) return false;
  return verifyText(publicKey, requestSigningString(parts), signature);
}
