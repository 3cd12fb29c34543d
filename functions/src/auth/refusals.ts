/**
 * Why a request's credentials were refused, and the one table from those reasons to the error
 * the caller gets. The reason itself goes to the structured log only (never the presented
 * value); the caller learns the status and a fixed message. Policy: a credential that does not
 * verify is 401 whatever the reason (unknown, revoked, expired, bad signature...), so a caller
 * cannot probe which keys exist; a valid credential that may not act is 403.
 */
import { ApiError } from '../core/errors.js';

/** The credential a refusal is about, as the log names it. */
export type RefusedCredential = 'bridge' | 'device' | 'token' | 'run' | 'delegation' | 'multiple';

/** A refusal: which credential (or header), and why. */
export interface Refusal {
  credential: RefusedCredential | string;
  reason: string;
  /** The header a `repeated_header` refusal is about. */
  header?: string;
}

/** Reasons whose error is not the credential's default (see {@link refusalError}). */
const REASON_ERRORS: Readonly<Record<string, (refusal: Refusal) => ApiError>> = {
  repeated_header: (r) =>
    new ApiError('invalid_argument', `the ${r.header} header must appear once`),
  ambiguous: () => new ApiError('invalid_argument', 'send exactly one credential per request'),
  no_credential: () =>
    new ApiError('unauthenticated', "a delegation needs the delegate's own credential"),
  with_bridge: () => new ApiError('invalid_argument', 'the bridge key cannot present a delegation'),
  with_run: () => new ApiError('invalid_argument', 'a run cannot present a delegation'),
  agent_disabled: () => new ApiError('permission_denied', 'the agent is disabled or unknown'),
  agent_missing: () => new ApiError('permission_denied', 'the agent is disabled or unknown'),
};

/**
 * The error for a refusal: by its reason when the table names it, else by credential — an
 * unusable delegation is 403 (the caller's own credential did verify), any other credential
 * that does not verify is 401.
 */
export function refusalError(refusal: Refusal): ApiError {
  const byReason = Object.hasOwn(REASON_ERRORS, refusal.reason)
    ? REASON_ERRORS[refusal.reason]
    : undefined;
  if (byReason !== undefined) return byReason(refusal);
  if (refusal.credential === 'delegation') {
    return new ApiError('permission_denied', 'the delegation cannot be used');
  }
  return new ApiError('unauthenticated', 'the credential is not valid');
}

/** Thrown inside authentication to stop at the first refusal; caught and logged in one place. */
export class RefusedError extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.reason);
  }
}
