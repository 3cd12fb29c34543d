/**
 * The one error the client throws for a call: the API's `{error: {code, message, details}}`
 * as a value with `code`, `status` and `details`, or a failure on the client's side of the wire
 * with a code of its own.
 */
import type { ApiErrorCode } from '@agentpack-identity/protocol';

/**
 * The API's codes (each with its HTTP status), and the client's own:
 * - `timeout`: no answer within `timeoutMs` (status 0);
 * - `unavailable` with status 0: the service could not be reached (connection refused, reset,
 *   DNS...); with status 503 it is the service's own answer;
 * - `aborted`: the caller's `signal` aborted the call (status 0);
 * - `bad_response`: an answer that is not the API's (not JSON, not the documented shape, or a
 *   sealed value that does not open with this device's key).
 * A request that fails the route's own schema before it is sent is `invalid_argument` with
 * status 0.
 */
export type ClientErrorCode = ApiErrorCode | 'timeout' | 'aborted' | 'bad_response';

/** Safe extra facts about an error, as the API gives them (`details.reason`, `details.field`...). */
export type ErrorDetails = Record<string, unknown>;

export class AgentpackError extends Error {
  override readonly name = 'AgentpackError';
  /** The API's error code, or one of the client's own ({@link ClientErrorCode}). */
  readonly code: ClientErrorCode;
  /** The HTTP status of the answer; 0 when there was none (network, timeout, local check). */
  readonly status: number;
  /** The API's `details`, when it sent any. */
  readonly details: ErrorDetails | undefined;
  /** The RPC called (`secrets/get`), when the error is about a call. */
  readonly rpc: string | undefined;
  /** How many attempts were made (retries included). */
  readonly attempts: number;

  constructor(init: {
    code: ClientErrorCode;
    message: string;
    status?: number;
    details?: ErrorDetails | undefined;
    rpc?: string | undefined;
    attempts?: number;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status ?? 0;
    this.details = init.details;
    this.rpc = init.rpc;
    this.attempts = init.attempts ?? 1;
  }
}

/** True when `error` is an {@link AgentpackError} (with `code`, when given). */
export function isAgentpackError(error: unknown, code?: ClientErrorCode): error is AgentpackError {
  return error instanceof AgentpackError && (code === undefined || error.code === code);
}

/** The code of an HTTP status when the answer carries no API error object (a proxy's page). */
export function codeOfStatus(status: number): ClientErrorCode {
  switch (status) {
    case 400:
      return 'invalid_argument';
    case 401:
      return 'unauthenticated';
    case 403:
      return 'permission_denied';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 409:
      return 'failed_precondition';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 429:
      return 'resource_exhausted';
    case 502:
    case 503:
    case 504:
      return 'unavailable';
    default:
      return status >= 500 ? 'internal' : 'bad_response';
  }
}
