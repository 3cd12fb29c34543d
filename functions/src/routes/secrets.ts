/** Routes under /secrets: an agent's own versioned, encrypted secrets. */
import { SECRET_NAME_PATTERN } from '@agentpack-identity/protocol';
import { z } from 'zod';
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

const nameSchema = z
  .string()
  .regex(SECRET_NAME_PATTERN, 'name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$');
const versionSchema = z
  .number()
  .int()
  .positive()
  .max(2 ** 31);
const versionsSchema = z.array(versionSchema).min(1).max(100);

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
  input: z.strictObject({
    name: nameSchema,
    value: z.string(),
    cas: z.number().int().nonnegative().optional(),
  }),
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
  input: z.strictObject({
    name: nameSchema,
    version: versionSchema.optional(),
    seal: z.boolean().optional(),
  }),
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
  input: z.strictObject({}),
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
  input: z.strictObject({ name: nameSchema }),
  resource: (input) => input.name,
  handle: ({ deps, principal, input }) =>
    secretMetadata(deps, agentPrincipal(principal), input.name),
});

const changeInput = z.strictObject({ name: nameSchema, versions: versionsSchema.optional() });

/** The three routes that change the state of versions differ only in the change and input. */
function versionChangeRoute(
  change: 'delete' | 'undelete' | 'destroy',
  input:
    typeof changeInput | z.ZodObject<{ name: typeof nameSchema; versions: typeof versionsSchema }>,
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
export const secretsDelete = versionChangeRoute('delete', changeInput);

/** POST /secrets/undelete: undo a soft delete (default: the current version). */
export const secretsUndelete = versionChangeRoute('undelete', changeInput);

/** POST /secrets/destroy: permanent; `versions` is required. */
export const secretsDestroy = versionChangeRoute(
  'destroy',
  z.strictObject({ name: nameSchema, versions: versionsSchema }),
);

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
  input: z.strictObject({
    refs: z.array(z.string().max(300)).min(1).max(100),
    seal: z.boolean().optional(),
  }),
  handle: ({ deps, principal, input }) =>
    resolveSecretRefs(deps, agentPrincipal(principal), input.refs, input.seal === true),
});
