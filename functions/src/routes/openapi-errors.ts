/**
 * The errors of the OpenAPI document (routes/openapi.ts): which statuses each route can give,
 * what they mean there, and the error object of each status with its codes from the one error
 * table (core/errors.ts).
 */
import { errorResponseOf, type ApiErrorCode } from '@agentpack-identity/protocol';
import type { z } from 'zod';
import { ERROR_STATUS } from '../core/errors.js';
import type { Route } from './route.js';

/**
 * The errors any route of a kind can give: each status once, as a response component, with its
 * meaning.
 */
export const GENERIC_ERRORS: Readonly<Record<number, { name: string; meaning: string }>> = {
  400: {
    name: 'InvalidArgument',
    meaning:
      'invalid_argument: a body that is not a UTF-8 JSON object of the schema (an unknown field is refused) or a value out of bounds; or a malformed or repeated credential header, or more than one credential.',
  },
  401: {
    name: 'Unauthenticated',
    meaning:
      'unauthenticated: no credential, or an unknown, revoked or expired one, or a missing or bad request signature. A refused capability token says why (`details.reason`, `WWW-Authenticate: Bearer error="invalid_token"`).',
  },
  403: {
    name: 'PermissionDenied',
    meaning:
      'permission_denied: a credential without the right: a caller kind the route does not accept, a scope or delegation that does not cover the call, or a disabled agent.',
  },
  405: {
    name: 'MethodNotAllowed',
    meaning: "method_not_allowed: another method than the route's (`Allow` names it).",
  },
  413: { name: 'PayloadTooLarge', meaning: 'payload_too_large: a body above 64 KiB.' },
  415: {
    name: 'UnsupportedMediaType',
    meaning: 'unsupported_media_type: a content type other than application/json (UTF-8).',
  },
  500: {
    name: 'Internal',
    meaning: 'internal: an unexpected failure; never a stack, a key or a secret.',
  },
  503: {
    name: 'Unavailable',
    meaning:
      'unavailable: a dependency is unavailable (the key service, a trusted issuer), or the server is starting; try again.',
  },
};

/**
 * The errors a route's handler can give beyond those every route of its kind can (see
 * {@link errorsOf}), with what they mean there.
 */
export const ROUTE_ERRORS: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  '/agents/create': { 409: 'already_exists: the agent id is taken (a retired id too).' },
  '/agents/get': { 404: 'not_found: no such agent.' },
  '/agents/disable': { 404: 'not_found: no such agent.' },
  '/agents/enable': {
    404: 'not_found: no such agent.',
    409: 'failed_precondition: a retired agent cannot be enabled.',
  },
  '/agents/retire': { 404: 'not_found: no such agent.' },
  '/device/issue': { 404: 'not_found: no such agent.' },
  '/device/revoke': { 404: "not_found: no such device key (another agent's key alike)." },
  '/device/enrollments/create': {
    404: 'not_found: no such agent, or `replaces_key_id` is not a key of the agent.',
  },
  '/device/enroll': {
    401: 'unauthenticated: the enrollment code is unknown, used or expired.',
    403: 'permission_denied: the agent is disabled.',
    409: 'failed_precondition: the device fingerprint differs from the expected one (`details.reason: "fingerprint_mismatch"`); the code stays unused.',
  },
  '/delegate': {
    404: 'not_found: `to_agent` does not exist.',
    409: 'failed_precondition: `to_agent` is disabled.',
    429: 'resource_exhausted: the agent has `delegations.max_active_per_agent` live delegations.',
  },
  '/delegate/revoke': { 404: 'not_found: no such delegation (or not a party to it).' },
  '/secrets/put': {
    404: 'not_found: no such agent.',
    409: 'failed_precondition: `cas` does not match (`details.current_version`), or `brokered: false` on a brokered secret.',
  },
  '/secrets/get': {
    404: 'not_found: no such secret version (`details.reason`: `not_found`, `deleted` or `destroyed`).',
  },
  '/secrets/list': { 404: 'not_found: no such agent.' },
  '/secrets/metadata': { 404: 'not_found: no such secret (or agent).' },
  '/secrets/delete': { 404: 'not_found: no such secret or version.' },
  '/secrets/undelete': {
    404: 'not_found: no such secret or version.',
    409: 'failed_precondition: a destroyed version cannot be undeleted.',
  },
  '/secrets/destroy': { 404: 'not_found: no such secret or version.' },
  '/secrets/resolve': {
    404: 'not_found: a reference cannot be resolved (`details.index`, `details.reason`); nothing is answered.',
  },
  '/secrets/grant': {
    404: 'not_found: no such shared secret, or no such agent.',
    409: 'failed_precondition: the agent is retired.',
    429: 'resource_exhausted: the shared secret has the most readers it may have.',
  },
  '/secrets/ungrant': { 404: 'not_found: no such shared secret.' },
  '/tokens/register': { 409: 'already_exists: a token with this jti is registered.' },
  '/runs/spawn': {
    404: 'not_found: no such agent.',
    409: 'already_exists: the public key belongs to another run; or failed_precondition: the run tree is at `runs.max_depth`.',
    429: 'resource_exhausted: the agent has `runs.max_active_per_agent` live runs.',
  },
  '/runs/complete': { 404: 'not_found: no such run.' },
  '/runs/revoke': { 404: "not_found: no such run (or not the caller's to revoke)." },
  '/issuers/delete': {
    404: 'not_found: no such issuer.',
    409: 'failed_precondition: a role still trusts the issuer.',
  },
  '/roles/put': {
    404: 'not_found: no such agent.',
    409: 'failed_precondition: the issuer is not trusted, or the agent is retired.',
  },
  '/roles/get': { 404: 'not_found: no such role.' },
  '/roles/delete': { 404: 'not_found: no such role.' },
  '/auth/exchange': {
    401: 'unauthenticated: the subject token is refused; `details.reason` is one of `malformed`, `unknown_role`, `untrusted_issuer`, `bad_signature`, `expired`, `not_yet_valid`, `wrong_audience`, `claim_mismatch`, `agent_disabled`.',
    409: 'already_exists: the public key belongs to another run.',
    429: "resource_exhausted: the role's agent has `runs.max_active_per_agent` live runs.",
    503: "unavailable: the issuer's keys cannot be fetched.",
  },
  '/device/list': { 404: 'not_found: no such agent.' },
  '/delegations/list': { 404: 'not_found: no such agent.' },
  '/runs/list': { 404: 'not_found: no such agent.' },
  '/.well-known/agentpack-agent-identity/': { 404: 'not_found: no such run.' },
};

/**
 * Every error status a route can give, with its meaning on that route, or null for the generic
 * one ({@link GENERIC_ERRORS}): 405, 500 and 503 on every route; the body's 400, 413 and 415 on
 * every POST; 400, 401 and 403 on every route that takes a header credential; 401 where the body
 * holds the credential; and the handler's own ({@link ROUTE_ERRORS}).
 */
export function errorsOf(route: Route): Map<number, string | null> {
  const statuses = new Set<number>([405, 500, 503]);
  if (route.method === 'POST') for (const s of [400, 413, 415]) statuses.add(s);
  if (Array.isArray(route.policy)) for (const s of [400, 401, 403]) statuses.add(s);
  if (route.policy === 'enrollment-code' || route.policy === 'subject-token') statuses.add(401);
  const own = ROUTE_ERRORS[route.path] ?? {};
  for (const s of Object.keys(own)) statuses.add(Number(s));
  return new Map(
    [...statuses]
      .sort((a, b) => a - b)
      .map((s) => {
        if (own[s] === undefined && GENERIC_ERRORS[s] === undefined) {
          throw new Error(`openapi: say what ${s} means on ${route.path} (ROUTE_ERRORS)`);
        }
        return [s, own[s] ?? null];
      }),
  );
}

/** The error codes of one status, from the one error table. */
export function codesOf(status: number): [ApiErrorCode, ...ApiErrorCode[]] {
  const codes = (Object.keys(ERROR_STATUS) as ApiErrorCode[]).filter(
    (code) => ERROR_STATUS[code] === status,
  );
  if (codes.length === 0) throw new Error(`no error code has the status ${status}`);
  return codes as [ApiErrorCode, ...ApiErrorCode[]];
}

/** The error object of one status (its codes only), made once: a component `Error<status>`. */
const ERROR_BODIES = new Map<number, z.ZodType>();
export function errorBody(status: number): z.ZodType {
  let body = ERROR_BODIES.get(status);
  if (body === undefined) {
    body = errorResponseOf(codesOf(status)).meta({ id: `Error${status}` });
    ERROR_BODIES.set(status, body);
  }
  return body;
}

/** A response header: its meaning and, when it has one, its only value. */
export const headerOf = (description: string, value?: string) => ({
  description,
  schema:
    value === undefined ? { type: 'string' as const } : { type: 'string' as const, enum: [value] },
});

/** The headers an error response of `status` carries. */
export function errorHeaders(status: number): Record<string, ReturnType<typeof headerOf>> {
  if (status === 401) return { 'www-authenticate': headerOf('The authentication challenge.') };
  if (status === 405) return { allow: headerOf("The route's method.") };
  return {};
}
