/**
 * What a route is: a method and path, the callers it accepts (its authorization policy), a
 * strict input schema, the schema of its answer, and a handler. The route table is the list of
 * these; the HTTP core enforces the policy, and the scope of tokens and delegations, before any
 * handler runs. A route with no policy cannot be written.
 */
import type { z } from 'zod';
import type { AuthDeps } from '../auth/authenticate.js';
import { ApiError } from '../core/errors.js';
import type { AgentPrincipal, CallerKind, Principal } from '../core/principal.js';
import type { Keyring } from '../ports/keyring.js';
import type { PublicJwk } from '@agentpack-identity/protocol';
import type { IssuerKeys } from '../core/issuer-keys.js';
import type { TokenSigner } from '../ports/token-signer.js';

/** Everything a handler may use. */
export interface AppDeps extends AuthDeps {
  keyring: Keyring;
  issuer: string;
  audience: string;
  /** The public capability keys, as published at the well-known URL. */
  jwks: { keys: PublicJwk[] };
  /** The online key that signs run tokens. */
  signer: TokenSigner;
  /** The `iss` of run tokens and the OIDC issuer. */
  issuerUrl: string;
  /** The keys of trusted issuers, for `/auth/exchange`. */
  issuerKeys: IssuerKeys;
}

/**
 * Who may call a route: `public` (no credential needed, any presented one is ignored),
 * `enrollment-code` (no header credential: a one-time code in the body is checked by the
 * handler), `subject-token` (no header credential: a trusted issuer's token in the body is
 * verified by the handler, `/auth/exchange`), or the list of caller kinds accepted. Anything not listed is denied.
 */
export type RoutePolicy =
  'public' | 'enrollment-code' | 'subject-token' | readonly [CallerKind, ...CallerKind[]];

/** The policies that take no header credential (any presented one is ignored). */
export type BodyOrNoCredential = 'public' | 'enrollment-code' | 'subject-token';

/**
 * Why a caller kind a policy leaves out is refused, when the route has more to say than the
 * generic 403: the message and `details.reason` of that refusal (the policy still decides).
 */
export type CallerRefusals = Partial<Record<CallerKind, { reason: string; message: string }>>;

/** True when the route's policy takes no header credential. */
export function takesNoCredential(policy: RoutePolicy): policy is BodyOrNoCredential {
  return policy === 'public' || policy === 'enrollment-code' || policy === 'subject-token';
}

export interface RouteSpec<S extends z.ZodType, O extends z.ZodType<object, object>> {
  method: 'GET' | 'POST';
  path: string;
  /** `prefix`: the route answers every path under `path`; the rest reaches the handler. */
  match?: 'exact' | 'prefix';
  /** The RPC name used in scopes and logs, e.g. `agents/get`. */
  rpc: string;
  policy: RoutePolicy;
  /** The explanation of a refusal by the policy, per caller kind it leaves out. */
  refusals?: CallerRefusals;
  /**
   * True when the route acts for one agent. Its body may carry `agent_id`: for a caller bound
   * to an agent it is ignored and replaced by the credential's agent; the bridge key names the
   * agent with it where the schema declares it.
   */
  agentScoped: boolean;
  /** Strict schema of the JSON body (unknown fields refused). */
  input: S;
  /**
   * Schema of the success answer (strict, from the protocol's responses): the handler's return
   * type, and what the OpenAPI document says the route answers with `status`.
   */
  output: O;
  /**
   * The single resource a call touches (a secret's name), checked against narrowed scope
   * entries such as `secrets/get:openai_key`. Null or absent: only an un-narrowed entry allows
   * the call.
   */
  resource?: (input: z.output<S>) => string | null;
  /**
   * `handler` when the handler checks token and delegation scope itself, per resource (a call
   * that names several resources, like `/secrets/resolve`); default: the HTTP core checks the
   * route's RPC and resource.
   */
  scopeCheck?: 'core' | 'handler';
  /** 201 when the route creates something, else 200. */
  status: 200 | 201;
  /** Extra response headers, e.g. Cache-Control on public documents. */
  headers?: Record<string, string>;
  handle(ctx: HandlerContext<z.output<S>>): Promise<z.input<O>>;
}

export interface HandlerContext<I> {
  deps: AppDeps;
  /** The verified caller; null only on public routes. */
  principal: Principal | null;
  input: I;
  /** For a prefix route, the path after the prefix; else empty. */
  rest: string;
}

/** A route with its input type erased, as the table holds it. */
export interface Route {
  method: 'GET' | 'POST';
  path: string;
  match: 'exact' | 'prefix';
  rpc: string;
  policy: RoutePolicy;
  refusals?: CallerRefusals;
  agentScoped: boolean;
  scopeCheck: 'core' | 'handler';
  status: 200 | 201;
  headers: Record<string, string>;
  input: z.ZodType;
  output: z.ZodType;
  resource(input: unknown): string | null;
  run(deps: AppDeps, principal: Principal | null, input: unknown, rest?: string): Promise<object>;
}

/**
 * Declares a route; the input schema's output type flows into the handler, and the handler must
 * return what the output schema describes.
 */
export function defineRoute<S extends z.ZodType, O extends z.ZodType<object, object>>(
  spec: RouteSpec<S, O>,
): Route {
  return {
    method: spec.method,
    path: spec.path,
    match: spec.match ?? 'exact',
    rpc: spec.rpc,
    policy: spec.policy,
    ...(spec.refusals === undefined ? {} : { refusals: spec.refusals }),
    agentScoped: spec.agentScoped,
    scopeCheck: spec.scopeCheck ?? 'core',
    status: spec.status,
    headers: spec.headers ?? {},
    input: spec.input,
    output: spec.output,
    resource: (input) => spec.resource?.(input as z.output<S>) ?? null,
    run: (deps, principal, input, rest = '') =>
      spec.handle({ deps, principal, input: input as z.output<S>, rest }),
  };
}

/**
 * The agent a request acts for. An agent-bound caller never chooses: any `agent_id` it sends
 * is ignored (a forged `agent_id` is a no-op), and a delegated call acts for the delegator.
 * The bridge key must name the agent.
 */
export function actingAgent(principal: Principal | null, requested: string | undefined): string {
  if (principal === null) throw new Error('actingAgent called on a public route');
  if (principal.kind !== 'bridge') return principal.delegation?.from_agent ?? principal.agent_id;
  if (requested === undefined) {
    throw new ApiError('invalid_argument', 'agent_id is required with the bridge key', {
      field: 'agent_id',
    });
  }
  return requested;
}

/** The principal of a route whose policy admits agent-bound callers only. */
export function agentPrincipal(principal: Principal | null): AgentPrincipal {
  if (principal === null || principal.kind === 'bridge') {
    throw new Error('route policy let a non-agent caller through');
  }
  return principal;
}

/** The principal of a route whose policy admits no public caller. */
export function requirePrincipal(principal: Principal | null): Principal {
  if (principal === null) throw new Error('route policy let an anonymous caller through');
  return principal;
}
