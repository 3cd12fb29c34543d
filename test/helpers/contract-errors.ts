/**
 * The error table of the API contract, by status, written out here independently of the
 * service's own table (functions/src/core/errors.ts), so that a change to either one fails a test.
 */
const BY_STATUS: Readonly<Record<number, readonly string[]>> = {
  400: ['invalid_argument'],
  401: ['unauthenticated'],
  403: ['permission_denied'],
  404: ['not_found'],
  405: ['method_not_allowed'],
  409: ['already_exists', 'failed_precondition'],
  413: ['payload_too_large'],
  415: ['unsupported_media_type'],
  429: ['resource_exhausted'],
  500: ['internal'],
  503: ['unavailable'],
};

/** Each contract error code with its HTTP status. */
export const CONTRACT_ERROR_STATUS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(BY_STATUS).flatMap(([status, codes]) =>
    codes.map((code) => [code, Number(status)]),
  ),
);
