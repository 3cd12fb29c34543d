/**
 * The closed set of error codes the API speaks, and the one table that maps them to HTTP
 * statuses. Anything thrown that is not an {@link ApiError} is a bug: the HTTP core logs it and
 * answers a generic 500, so no stack, key or secret can reach a caller.
 */
export const ERROR_STATUS = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_exists: 409,
  failed_precondition: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  resource_exhausted: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** JSON-safe extra facts about an error (never a key, a secret or a stack). */
export type ErrorDetails = Record<string, string | number | boolean | null | string[]>;

/**
 * An error meant for the caller: its code picks the status, its message is written for a
 * person, and its details are safe to show. Throw it from anywhere below the HTTP core.
 */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = details;
  }

  /** The HTTP status this error maps to, from {@link ERROR_STATUS}. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** The JSON body of the error response. */
  toBody(): { error: { code: ErrorCode; message: string; details?: ErrorDetails } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

/** The body of every 500: generic on purpose, the cause goes to the log only. */
export const INTERNAL_ERROR = new ApiError('internal', 'internal error');
