/**
 * The OpenAPI 3.1 document of the route table, generated from it by
 * `@asteasolutions/zod-to-openapi`: every route with its method and path, the credentials its
 * policy accepts (as security requirements), its request body (the `input` schema the HTTP core
 * validates with), its success answer (the `output` schema, with the route's status) and every
 * error it can give, as the contract's error object with the statuses of the one error table
 * (core/errors.ts). Nothing here is written by hand that the table already says; what the table
 * does not say — which handler-specific errors a route can give — is listed in
 * openapi-errors.ts, and the OpenAPI test holds the server's real answers to it; the credential
 * schemes are in openapi-security.ts.
 *
 * Served at `GET /openapi.json` and committed as `docs/openapi.json` (`npm run openapi`). The
 * document is made on the first request for it (tens of milliseconds, synchronously: the answer
 * goes out in the same turn, as every other route's does) and kept.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { emptyRequest, openApiDocumentResponse } from '@agentpack-identity/protocol';
import { z } from 'zod';
import { errorBody, errorHeaders, errorsOf, GENERIC_ERRORS, headerOf } from './openapi-errors.js';
import { securityOf, SECURITY_SCHEMES } from './openapi-security.js';
import { defineRoute, type Route } from './route.js';

/** The version of the API contract the document describes. */
export const API_VERSION = '0.2.0';

/** The path parameter of each prefix route (the rest of its path). */
const PREFIX_PARAMS: Readonly<Record<string, { name: string; description: string }>> = {
  '/.well-known/agentpack-agent-identity/': { name: 'run_id', description: 'The run id.' },
};

/** The OpenAPI path of a route: a prefix route's rest is its path parameter. */
export function openApiPath(route: Route): string {
  if (route.match === 'exact') return route.path;
  const param = PREFIX_PARAMS[route.path];
  if (param === undefined) throw new Error(`openapi: name the path parameter of ${route.path}`);
  return `${route.path}{${param.name}}`;
}

/** `agents/create` → `agentsCreate`; `.well-known/jwks.json` → `wellKnownJwksJson`. */
function operationId(rpc: string): string {
  const words = rpc.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  return words.map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1))).join('');
}

/** A tag per area: the first segment of the path. */
function tagOf(route: Route): string {
  const first = route.path.split('/')[1]!;
  const tags: Record<string, string> = {
    '.well-known': 'public',
    healthz: 'public',
    'openapi.json': 'public',
    delegate: 'delegations',
  };
  return tags[first] ?? first;
}

/** Who may call a route, in words. */
function callersOf(route: Route): string {
  switch (route.policy) {
    case 'public':
      return 'Public: no credential (any presented one is ignored).';
    case 'enrollment-code':
      return 'No header credential: the one-time enrollment `code` in the body is the credential.';
    case 'subject-token':
      return "No header credential: the `subject_token` in the body (a JWT of a role's trusted issuer) is the credential.";
    default: {
      const bound = route.agentScoped
        ? ' Acts for one agent: an agent-bound caller acts for its own agent (a delegate for the delegator) and any `agent_id` it sends is ignored; the bridge key names the agent with `agent_id`.'
        : '';
      return `Callers: ${route.policy.join(', ')}.${bound}`;
    }
  }
}

const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * The request body a route accepts: its input schema; on a route that acts for one agent, also
 * an `agent_id` the schema does not declare, which the HTTP core drops before validation (the
 * agent_id rewrite: accepted and ignored).
 */
function bodyOf(route: Route): z.ZodType {
  const input = route.input;
  if (!route.agentScoped || !(input instanceof z.ZodObject) || 'agent_id' in input.shape) {
    return input;
  }
  return input.extend({
    agent_id: z.unknown().meta({
      description: 'Ignored: the agent comes from the credential (the agent_id rewrite).',
    }),
  });
}

/** The OpenAPI document of `routes`. */
export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    registry.registerComponent('securitySchemes', name, scheme);
  }
  const generic = new Set<number>();
  for (const route of routes) {
    const prefix = route.match === 'prefix' ? PREFIX_PARAMS[route.path] : undefined;
    const responses: Record<string, object> = {
      [route.status]: {
        description: route.status === 201 ? 'Created.' : 'OK.',
        headers: {
          'cache-control': headerOf('Caching.', route.headers['cache-control'] ?? 'no-store'),
        },
        content: { 'application/json': { schema: route.output } },
      },
    };
    for (const [status, meaning] of errorsOf(route)) {
      if (meaning === null) {
        generic.add(status);
        responses[status] = { $ref: `#/components/responses/${GENERIC_ERRORS[status]!.name}` };
        continue;
      }
      responses[status] = {
        description: meaning,
        headers: errorHeaders(status),
        content: { 'application/json': { schema: errorBody(status) } },
      };
    }
    registry.registerPath({
      method: route.method === 'GET' ? 'get' : 'post',
      path: openApiPath(route),
      operationId: operationId(route.rpc),
      tags: [tagOf(route)],
      description: callersOf(route),
      security: securityOf(route),
      'x-agentpack-rpc': route.rpc,
      'x-agentpack-callers': Array.isArray(route.policy) ? [...route.policy] : route.policy,
      ...(route.method === 'POST'
        ? {
            request: {
              body: { required: true, content: { 'application/json': { schema: bodyOf(route) } } },
            },
          }
        : prefix === undefined
          ? {}
          : {
              request: {
                params: z.object({
                  [prefix.name]: z.string().meta({ description: prefix.description }),
                }),
              },
            }),
      responses,
    });
  }
  for (const status of [...generic].sort((a, b) => a - b)) {
    const { name, meaning } = GENERIC_ERRORS[status]!;
    registry.registerComponent('responses', name, {
      description: meaning,
      headers: errorHeaders(status),
      content: { 'application/json': { schema: schemaRef(`Error${status}`) } },
    });
  }
  // The error objects the response components name, as schema components.
  const errorSchemas = [...generic]
    .sort((a, b) => a - b)
    .map((status) => ({ type: 'schema' as const, schema: errorBody(status) }));
  const generator = new OpenApiGeneratorV31([...registry.definitions, ...errorSchemas]);
  return generator.generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'agentpack-identity',
      version: API_VERSION,
      description:
        'Identity and secrets for AI agents: agent identities, device keys, delegations, runs, secrets and workload federation. Every RPC is a POST of a JSON object (at most 64 KiB); public documents are GETs. Failures are `{"error": {"code", "message", "details"?}}`.',
    },
  }) as unknown as Record<string, unknown>;
}

/**
 * `GET /openapi.json` (public): the document of `routes()`, generated once on first use. A
 * thunk, so the route can be a row of the very table it describes.
 */
export function openApiRoute(routes: () => readonly Route[]): Route {
  let document: Record<string, unknown> | undefined;
  return defineRoute({
    method: 'GET',
    path: '/openapi.json',
    rpc: 'openapi.json',
    policy: 'public',
    agentScoped: false,
    status: 200,
    headers: { 'cache-control': 'public, max-age=300' },
    input: emptyRequest,
    output: openApiDocumentResponse,
    handle: async () => {
      document ??= openApiDocument(routes());
      return document as z.input<typeof openApiDocumentResponse>;
    },
  });
}
