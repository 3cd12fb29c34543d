/**
 * Why a request's credentials were refused, and the one table from those reasons to the error
 * the caller gets. The reason itself goes to the structured log only (never the presented
 * value); the caller learns the status and a fixed message. Policy: a credential that does not
 * verify is 401 whatever the reason (unknown, revoked, expired, bad signature...), so a caller
 * cannot probe which keys exist; a valid credential that may not act is 403.
 */
import { ApiError } from '../core/errors.js';
import { TOKEN_REFUSAL_MESSAGES, type TokenRefusal } from '../tokens/verify.js';

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
  if (refusal.credential === 'token') {
    const error = tokenError(refusal.reason);
    if (error !== undefined) return error;
  }
  if (refusal.credential === 'delegation') {
    return new ApiError('permission_denied', 'the delegation cannot be used');
  }
  return new ApiError('unauthenticated', 'the credential is not valid');
}

/**
 * The reasons a capability token's holder is told (RFC 6750 `error_description` and
 * `details.reason`): the contract's closed list. Finer verifier reasons about the token's shape
 * are all `malformed`; a service with no pinned keys knows no `kid`.
 */
const TOKEN_REASON: Readonly<Record<TokenRefusal | 'no_keys_configured', string>> = {
  malformed: 'malformed',
  bad_encoding: 'malformed',
  unsupported_alg: 'malformed',
  bad_typ: 'malformed',
  bad_header: 'malformed',
  crit: 'malformed',
  bad_claims: 'malformed',
  unknown_kid: 'unknown_kid',
  no_keys_configured: 'unknown_kid',
  bad_signature: 'bad_signature',
  wrong_issuer: 'wrong_issuer',
  wrong_audience: 'wrong_audience',
  expired: 'expired',
  not_yet_valid: 'not_yet_valid',
  lifetime_too_long: 'lifetime_too_long',
};

/**
 * A 401 that names its own challenge. Policy (RFC 6750 §3): a refused bearer token says why to
 * its holder — the token is theirs, so the reason tells them nothing about anyone else's
 * credential — while device keys, bridge keys and runs get the same reasonless 401 whatever
 * the cause, so they cannot be probed.
 */
export class ChallengedError extends ApiError {
  constructor(
    message: string,
    details: { reason: string },
    readonly challenge: string,
  ) {
    super('unauthenticated', message, details);
  }
}

function tokenError(reason: string): ApiError | undefined {
  if (!Object.hasOwn(TOKEN_REASON, reason)) return undefined;
  const told = TOKEN_REASON[reason as keyof typeof TOKEN_REASON];
  // The verifier's own sentence; with no pinned keys, that of an unknown kid (as `told` says).
  const message =
    TOKEN_REFUSAL_MESSAGES[reason as TokenRefusal] ?? TOKEN_REFUSAL_MESSAGES.unknown_kid;
  return new ChallengedError(
    message,
    { reason: told },
    `Bearer realm="agentpack-identity", error="invalid_token", error_description="${told}"`,
  );
}
