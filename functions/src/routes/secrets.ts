/**
 * Routes under /secrets: an agent's own versioned, encrypted secrets, provisioned write-only by
 * operators, and the project's shared secrets.
 *
 * Policy — operators provision, agents read. The bridge key (with `agent_id`: an agent, or
 * `_shared` for the shared secrets) may put, list, inspect, delete, undelete and destroy, and
 * grant shared secrets; it is never given a value: `/secrets/get` and `/secrets/resolve` do not
 * list it (403 `write_only`). This is stricter than Vault, where an admin token reads every
 * secret: a leaked or misused bridge key can overwrite or destroy a secret — both audited — but
 * never exfiltrate one. Only the agent a secret belongs to (or a delegate within scope, or an
 * agent granted a shared secret) reads it.
 */
import {
  secretsChangeRequest,
  secretsDestroyRequest,
  secretsGetRequest,
  secretsGrantResponse,
  secretsGetResponse,
  secretsGrantRequest,
  secretsListRequest,
  secretsListResponse,
  secretsMetadataRequest,
  secretsMetadataResponse,
  secretsPutRequest,
  secretsPutResponse,
  secretsResolveRequest,
  secretsResolveResponse,
  secretsVersionsResponse,
  SHARED_OWNER,
  sharedSecretResource,
} from '@agentpack-identity/protocol';
import { resolveSecretRefs } from '../core/secret-refs.js';
import {
  changeVersions,
  listSecrets,
  putSecret,
  secretMetadata,
  type SecretsCall,
} from '../core/secrets.js';
import { getSecret } from '../core/secret-reads.js';
import { changeGrants } from '../core/shared-secrets.js';
import type { CallerKind, Principal } from '../core/principal.js';
import {
  actingAgent,
  agentPrincipal,
  defineRoute,
  requirePrincipal,
  type CallerRefusals,
} from './route.js';

/** The reads: one agent's credential — its device key, a token, a run, or a delegation in scope. */
const AGENT_CALLERS = [
  'device',
  'token',
  'run',
  'delegated',
] as const satisfies readonly CallerKind[];

/** The writes and inspections: the agent's own callers, and the bridge key (write-only). */
const PROVISIONING_CALLERS = ['bridge', ...AGENT_CALLERS] as const satisfies readonly CallerKind[];

/** Why the bridge key is refused by the reads: it never reads a value. */
const WRITE_ONLY: CallerRefusals = {
  bridge: {
    reason: 'write_only',
    message:
      "the bridge key provisions secrets but never reads a value: read with the agent's own credential",
  },
};

/**
 * Whose secrets a call manages and who makes it: the agent it acts for ({@link actingAgent}:
 * the credential's agent, the delegator; the bridge must name one with `agent_id`).
 */
function callOf(principal: Principal | null, agentId: string | undefined): SecretsCall {
  return { owner: actingAgent(principal, agentId), actor: requirePrincipal(principal) };
}

/** POST /secrets/put: a new version; `cas` guards against lost updates. */
export const secretsPut = defineRoute({
  method: 'POST',
  path: '/secrets/put',
  rpc: 'secrets/put',
  policy: PROVISIONING_CALLERS,
  agentScoped: true,
  status: 200,
  input: secretsPutRequest,
  output: secretsPutResponse,
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) => putSecret(deps, callOf(principal, input.agent_id), input),
});

/**
 * POST /secrets/get: the current version, or the one asked for; with `owner: "_shared"` the
 * shared secret of that name, if granted to the agent the call acts for (scope resource
 * `_shared/<name>`). Never the bridge key.
 */
export const secretsGet = defineRoute({
  method: 'POST',
  path: '/secrets/get',
  rpc: 'secrets/get',
  policy: AGENT_CALLERS,
  refusals: WRITE_ONLY,
  agentScoped: true,
  status: 200,
  input: secretsGetRequest,
  output: secretsGetResponse,
  resource: (input) =>
    input.owner === SHARED_OWNER ? sharedSecretResource(input.name) : input.name,
  handle: ({ deps, principal, input }) => getSecret(deps, agentPrincipal(principal), input),
});

/** POST /secrets/list: names and metadata, never values. */
export const secretsList = defineRoute({
  method: 'POST',
  path: '/secrets/list',
  rpc: 'secrets/list',
  policy: PROVISIONING_CALLERS,
  agentScoped: true,
  status: 200,
  input: secretsListRequest,
  output: secretsListResponse,
  handle: ({ deps, principal, input }) => listSecrets(deps, callOf(principal, input.agent_id)),
});

/** POST /secrets/metadata: one secret's versions and their state (and a shared one's readers). */
export const secretsMetadata = defineRoute({
  method: 'POST',
  path: '/secrets/metadata',
  rpc: 'secrets/metadata',
  policy: PROVISIONING_CALLERS,
  agentScoped: true,
  status: 200,
  input: secretsMetadataRequest,
  output: secretsMetadataResponse,
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) =>
    secretMetadata(deps, callOf(principal, input.agent_id), input.name),
});

/** The three routes that change the state of versions differ only in the change and input. */
function versionChangeRoute(
  change: 'delete' | 'undelete' | 'destroy',
  input: typeof secretsChangeRequest | typeof secretsDestroyRequest,
) {
  return defineRoute({
    method: 'POST',
    path: `/secrets/${change}`,
    rpc: `secrets/${change}`,
    policy: PROVISIONING_CALLERS,
    agentScoped: true,
    status: 200,
    input,
    output: secretsVersionsResponse,
    resource: (body) => body.name,
    handle: ({ deps, principal, input: body }) =>
      changeVersions(deps, callOf(principal, body.agent_id), change, body),
  });
}

/** POST /secrets/delete: soft delete (default: the current version). */
export const secretsDelete = versionChangeRoute('delete', secretsChangeRequest);

/** POST /secrets/undelete: undo a soft delete (default: the current version). */
export const secretsUndelete = versionChangeRoute('undelete', secretsChangeRequest);

/** POST /secrets/destroy: permanent; `versions` is required. */
export const secretsDestroy = versionChangeRoute('destroy', secretsDestroyRequest);

/**
 * POST /secrets/resolve: `agentpack.secret://` references, in order, all or none. Scope is
 * checked per reference by the handler (each needs the right to `secrets/get` that secret).
 * Never the bridge key.
 */
export const secretsResolve = defineRoute({
  method: 'POST',
  path: '/secrets/resolve',
  rpc: 'secrets/resolve',
  policy: AGENT_CALLERS,
  refusals: WRITE_ONLY,
  agentScoped: true,
  scopeCheck: 'handler',
  status: 200,
  input: secretsResolveRequest,
  output: secretsResolveResponse,
  handle: ({ deps, principal, input }) =>
    resolveSecretRefs(deps, agentPrincipal(principal), input.refs, {
      seal: input.seal === true,
      fallback: input.fallback ?? null,
    }),
});

/** Grant and ungrant: which agents may read one shared secret (bridge only). */
function grantRoute(change: 'grant' | 'ungrant') {
  return defineRoute({
    method: 'POST',
    path: `/secrets/${change}`,
    rpc: `secrets/${change}`,
    policy: ['bridge'],
    agentScoped: false,
    status: 200,
    input: secretsGrantRequest,
    output: secretsGrantResponse,
    handle: ({ deps, principal, input }) =>
      changeGrants(deps, requirePrincipal(principal), change, input),
  });
}

/** POST /secrets/grant (bridge): let agents read the shared secret `name`. */
export const secretsGrant = grantRoute('grant');

/** POST /secrets/ungrant (bridge): stop agents reading the shared secret `name`. */
export const secretsUngrant = grantRoute('ungrant');
