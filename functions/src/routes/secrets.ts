/** Routes under /secrets: an agent's own versioned, encrypted secrets. */
import {
  secretsChangeRequest,
  secretsDestroyRequest,
  secretsGetRequest,
  secretsListRequest,
  secretsMetadataRequest,
  secretsPutRequest,
  secretsResolveRequest,
} from '@agentpack-identity/protocol';
import { resolveSecretRefs } from '../core/secret-refs.js';
import {
  changeVersions,
  getSecret,
  listSecrets,
  putSecret,
  secretMetadata,
} from '../core/secrets.js';
import type { CallerKind } from '../core/principal.js';
import { agentPrincipal, defineRoute } from './route.js';

/** Every secrets RPC acts for one agent: its device key, a token, a run, or a delegation in scope. */
const AGENT_CALLERS = [
  'device',
  'token',
  'run',
  'delegated',
] as const satisfies readonly CallerKind[];

/** POST /secrets/put: a new version; `cas` guards against lost updates. */
export const secretsPut = defineRoute({
  method: 'POST',
  path: '/secrets/put',
  rpc: 'secrets/put',
  policy: AGENT_CALLERS,
  agentScoped: true,
  status: 200,
  input: secretsPutRequest,
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) => putSecret(deps, agentPrincipal(principal), input),
});

/** POST /secrets/get: the current version, or the one asked for. */
export const secretsGet = defineRoute({
  method: 'POST',
  path: '/secrets/get',
  rpc: 'secrets/get',
  policy: AGENT_CALLERS,
  agentScoped: true,
  status: 200,
  input: secretsGetRequest,
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) => getSecret(deps, agentPrincipal(principal), input),
});

/** POST /secrets/list: names and metadata, never values. */
export const secretsList = defineRoute({
  method: 'POST',
  path: '/secrets/list',
  rpc: 'secrets/list',
  policy: AGENT_CALLERS,
  agentScoped: true,
  status: 200,
  input: secretsListRequest,
  handle: ({ deps, principal }) => listSecrets(deps, agentPrincipal(principal)),
});

/** POST /secrets/metadata: one secret's versions and their state. */
export const secretsMetadata = defineRoute({
  method: 'POST',
  path: '/secrets/metadata',
  rpc: 'secrets/metadata',
  policy: AGENT_CALLERS,
  agentScoped: true,
  status: 200,
  input: secretsMetadataRequest,
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) =>
    secretMetadata(deps, agentPrincipal(principal), input.name),
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
    policy: AGENT_CALLERS,
    agentScoped: true,
    status: 200,
    input,
    resource: (body) => body.name,
    handle: ({ deps, principal, input: body }) =>
      changeVersions(deps, agentPrincipal(principal), change, body),
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
 */
export const secretsResolve = defineRoute({
  method: 'POST',
  path: '/secrets/resolve',
  rpc: 'secrets/resolve',
  policy: AGENT_CALLERS,
  agentScoped: true,
  scopeCheck: 'handler',
  status: 200,
  input: secretsResolveRequest,
  handle: ({ deps, principal, input }) =>
    resolveSecretRefs(deps, agentPrincipal(principal), input.refs, input.seal === true),
});
