/**
 * What a credential verifier is: one function per credential kind that takes the presented
 * value and answers with a principal or a refusal reason (never throws for a bad credential),
 * and the reading of the headers they share.
 */
import type { CoreDeps } from '../core/deps.js';
import type { Principal } from '../core/principal.js';
import { SIGNED_REQUEST_HEADERS } from '@agentpack-identity/protocol';
import type { HttpRequest } from '../ports/http.js';
import type { Logger } from '../ports/logger.js';
import type { TokenVerifier } from '../tokens/verify.js';
import type { BridgeKeyring } from './bridge-keys.js';
import type { Refusal } from './refusals.js';

/** A refusal as a verifier gives it: the reason (and header); authentication adds the credential. */
export type RefusalReason = Omit<Refusal, 'credential'>;

export interface AuthDeps extends CoreDeps {
  bridgeKeys: BridgeKeyring;
  /** Null when no capability keys are configured: every bearer token is then refused. */
  tokens: TokenVerifier | null;
  logger: Logger;
}

/** A verifier's answer: the principal, or why not (for the log; the error comes from the table). */
export type Verdict<P extends Principal = Principal> =
  { ok: true; principal: P } | { ok: false; refusal: RefusalReason };

/** Verifies one kind of credential: `value` is its header's single value. */
export type CredentialVerifier<P extends Principal = Principal> = (
  deps: AuthDeps,
  request: HttpRequest,
  value: string,
) => Promise<Verdict<P>>;

/** A refusal verdict. */
export const refused = (
  reason: string,
  header?: string,
): { ok: false; refusal: RefusalReason } => ({
  ok: false,
  refusal: header === undefined ? { reason } : { reason, header },
});

/** A header's single value, `undefined` when absent, or a `repeated_header` refusal. */
export function singleHeader(
  request: HttpRequest,
  name: string,
): { value: string | undefined } | { refusal: RefusalReason } {
  const values = request.headers[name];
  if (values === undefined || values.length === 0) return { value: undefined };
  if (values.length > 1) return { refusal: { reason: 'repeated_header', header: name } };
  return { value: values[0] };
}

/** The signed-request headers: all three, none, some (malformed), or a repeated one. */
export type SignatureHeaders =
  | { timestamp: string; nonce: string; signature: string }
  | 'none'
  | 'partial'
  | { refusal: RefusalReason };

/** Reads the three signed-request headers of `request`. */
export function signatureHeaders(request: HttpRequest): SignatureHeaders {
  const values: Array<string | undefined> = [];
  for (const name of [
    SIGNED_REQUEST_HEADERS.timestamp,
    SIGNED_REQUEST_HEADERS.nonce,
    SIGNED_REQUEST_HEADERS.signature,
  ]) {
    const read = singleHeader(request, name);
    if ('refusal' in read) return read;
    values.push(read.value);
  }
  const [timestamp, nonce, signature] = values;
  if (timestamp !== undefined && nonce !== undefined && signature !== undefined) {
    return { timestamp, nonce, signature };
  }
  return values.every((v) => v === undefined) ? 'none' : 'partial';
}
