/**
 * The HTTP core: one function from {@link HttpRequest} to {@link HttpResponse}, shared by the
 * Cloud Function and the local server. Steps, in order: route lookup (404), method (405), body
 * (413, 415, 400), credential (400/401), the route's policy (403), the strict schema (400),
 * the handler. Every failure is a JSON error from the one error table; anything unexpected is
 * logged and answered with a generic 500.
 */
import type { z } from 'zod';
import { Authenticator, WWW_AUTHENTICATE } from '../auth/authenticate.js';
import { ChallengedError } from '../auth/refusals.js';
import { ApiError, INTERNAL_ERROR } from '../core/errors.js';
import { callerKind, credentialScope, type Principal } from '../core/principal.js';
import { delegationAllows, scopeAllows } from '@agentpack-identity/protocol';
import { takesNoCredential, type AppDeps, type Route } from '../routes/route.js';
import { ROUTES, routeIndex } from '../routes/table.js';
import { parseJsonObjectBody } from './parse-body.js';
import type { HttpRequest, HttpResponse } from '../ports/http.js';

export type Handler = (req: HttpRequest) => Promise<HttpResponse>;

const BASE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

function errorResponse(error: ApiError, extra: Record<string, string> = {}): HttpResponse {
  const headers: Record<string, string> = { ...BASE_HEADERS, ...extra };
  if (error.code === 'unauthenticated') {
    headers['www-authenticate'] =
      error instanceof ChallengedError ? error.challenge : WWW_AUTHENTICATE;
  }
  return { status: error.status, headers, body: error.toBody() };
}

/**
 * A field name safe to repeat to the caller. Policy: values are never echoed, and neither is a
 * name that could be a credential pasted in the wrong place (anything long or unusual).
 */
function safeName(name: PropertyKey): string {
  const text = String(name);
  return /^[A-Za-z0-9_]{1,24}$/.test(text) ? text : '(unnamed)';
}

/** One zod issue as a sentence: where and what, never the offending value. */
function describeIssue(issue: z.ZodIssue): string {
  const where = issue.path.map(safeName).join('.');
  const what =
    issue.code === 'unrecognized_keys'
      ? `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map(safeName).join(', ')}`
      : issue.message;
  return where === '' ? what : `${where}: ${what}`;
}

/** Zod issues as a safe 400. */
function schemaError(error: z.ZodError): ApiError {
  const first = error.issues[0];
  const field = first === undefined ? '' : first.path.map(safeName).join('.');
  return new ApiError(
    'invalid_argument',
    first === undefined ? 'invalid input' : describeIssue(first),
    {
      ...(field === '' ? {} : { field }),
      issues: error.issues.slice(0, 10).map(describeIssue),
    },
  );
}

/** Refuses a principal the route's policy does not list. */
function checkPolicy(route: Route, principal: Principal | null): void {
  if (takesNoCredential(route.policy)) return;
  if (principal === null) throw new ApiError('unauthenticated', 'this route needs a credential');
  const kind = callerKind(principal);
  if (!route.policy.includes(kind)) {
    const why = route.refusals?.[kind];
    if (why !== undefined)
      throw new ApiError('permission_denied', why.message, { reason: why.reason });
    throw new ApiError(
      'permission_denied',
      kind === 'delegated'
        ? `${route.rpc} cannot be called through a delegation`
        : `this route does not accept a ${kind} credential`,
    );
  }
}

/**
 * Enforces the scope of a capability token and of a delegation, per RPC and per resource. A
 * delegated call made with a token needs both: the delegation grants, the token limits.
 */
function checkScope(route: Route, principal: Principal | null, input: unknown): void {
  if (principal === null || principal.kind === 'bridge' || route.scopeCheck === 'handler') return;
  const resource = route.resource(input);
  const own = credentialScope(principal);
  if (own !== null && !scopeAllows(own, route.rpc, resource)) {
    throw new ApiError(
      'permission_denied',
      `the ${principal.kind}'s scope does not allow ${route.rpc}`,
      {
        rpc: route.rpc,
      },
    );
  }
  const delegation = principal.delegation;
  if (delegation !== undefined && !delegationAllows(delegation.scope, route.rpc, resource)) {
    throw new ApiError('permission_denied', `the delegation's scope does not allow ${route.rpc}`, {
      rpc: route.rpc,
    });
  }
}

/**
 * Builds the request handler over its dependencies. `routes` defaults to the route table; tests
 * may pass their own to prove the core's guarantees.
 */
export function createHandler(deps: AppDeps, routes: readonly Route[] = ROUTES): Handler {
  const index = routeIndex(routes);
  const authenticator = new Authenticator(deps);
  return async (req) => {
    const found = index(req.path);
    const route = found?.route;
    try {
      if (route === undefined) throw new ApiError('not_found', 'no such route');
      if (req.method !== route.method) {
        return errorResponse(
          new ApiError('method_not_allowed', `use ${route.method} for ${route.path}`),
          { allow: route.method },
        );
      }
      const body = route.method === 'POST' ? parseJsonObjectBody(req) : {};
      const principal = takesNoCredential(route.policy)
        ? null
        : await authenticator.authenticate(req);
      checkPolicy(route, principal);
      // agent_id rewrite: a caller bound to an agent never chooses the agent.
      if (route.agentScoped && principal !== null && principal.kind !== 'bridge')
        delete body['agent_id'];
      if (route.agentScoped && principal?.kind === 'bridge' && !hasField(route.input, 'agent_id')) {
        delete body['agent_id'];
      }
      const parsed = route.input.safeParse(body);
      if (!parsed.success) throw schemaError(parsed.error);
      checkScope(route, principal, parsed.data);
      const result = await route.run(deps, principal, parsed.data, found!.rest);
      return { status: route.status, headers: { ...BASE_HEADERS, ...route.headers }, body: result };
    } catch (error) {
      if (error instanceof ApiError) {
        // A dependency outage (503) leaves a trace for operators; the caller gets the code only.
        if (error.status >= 500) {
          deps.logger.error('request.unavailable', {
            path: route?.path ?? 'unknown',
            code: error.code,
          });
        }
        return errorResponse(error);
      }
      deps.logger.error('request.failed', {
        path: route?.path ?? 'unknown',
        error: error instanceof Error ? `${error.name}: ${error.message}` : 'non-error thrown',
        stack: error instanceof Error ? error.stack : undefined,
      });
      return errorResponse(INTERNAL_ERROR);
    }
  };
}

/** True when an object schema declares `field`. */
function hasField(schema: z.ZodType, field: string): boolean {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  return shape !== undefined && field in shape;
}
