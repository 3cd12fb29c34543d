/**
 * Workload federation: the bridge manages trusted issuers and roles; a workload exchanges a
 * token of such an issuer for a run (`/auth/exchange`, no header credential).
 */
import {
  authExchangeRequest,
  issuerResponse,
  issuersDeleteRequest,
  issuersDeleteResponse,
  issuersListRequest,
  issuersListResponse,
  issuersPutRequest,
  roleResponse,
  rolesDeleteRequest,
  rolesDeleteResponse,
  rolesGetRequest,
  rolesListRequest,
  rolesListResponse,
  rolesPutRequest,
  runsSpawnResponse,
} from '@agentpack-identity/protocol';
import { exchange } from '../core/exchange.js';
import {
  deleteIssuer,
  deleteRole,
  getRole,
  listIssuers,
  listRoles,
  putIssuer,
  putRole,
} from '../core/federation.js';
import { defineRoute, requirePrincipal } from './route.js';

const bridgeOnly = ['bridge'] as const;

export const issuersPut = defineRoute({
  method: 'POST',
  path: '/issuers/put',
  rpc: 'issuers/put',
  policy: bridgeOnly,
  agentScoped: false,
  status: 200,
  input: issuersPutRequest,
  output: issuerResponse,
  handle: ({ deps, principal, input }) => putIssuer(deps, requirePrincipal(principal), input),
});

export const issuersList = defineRoute({
  method: 'POST',
  path: '/issuers/list',
  rpc: 'issuers/list',
  policy: bridgeOnly,
  agentScoped: false,
  status: 200,
  input: issuersListRequest,
  output: issuersListResponse,
  handle: ({ deps, input }) => listIssuers(deps, input),
});

export const issuersDelete = defineRoute({
  method: 'POST',
  path: '/issuers/delete',
  rpc: 'issuers/delete',
  policy: bridgeOnly,
  agentScoped: false,
  status: 200,
  input: issuersDeleteRequest,
  output: issuersDeleteResponse,
  handle: ({ deps, principal, input }) =>
    deleteIssuer(deps, requirePrincipal(principal), input.issuer),
});

export const rolesPut = defineRoute({
  method: 'POST',
  path: '/roles/put',
  rpc: 'roles/put',
  policy: bridgeOnly,
  agentScoped: false,
  status: 200,
  input: rolesPutRequest,
  output: roleResponse,
  handle: ({ deps, principal, input }) => putRole(deps, requirePrincipal(principal), input),
});

export const rolesGet = defineRoute({
  method: 'POST',
  path: '/roles/get',
  rpc: 'roles/get',
  policy: bridgeOnly,
  agentScoped: false,
  status: 200,
  input: rolesGetRequest,
  output: roleResponse,
  handle: ({ deps, input }) => getRole(deps, input.role),
});

export const rolesList = defineRoute({
  method: 'POST',
  path: '/roles/list',
  rpc: 'roles/list',
  policy: bridgeOnly,
  agentScoped: false,
  status: 200,
  input: rolesListRequest,
  output: rolesListResponse,
  handle: ({ deps, input }) => listRoles(deps, input),
});

export const rolesDelete = defineRoute({
  method: 'POST',
  path: '/roles/delete',
  rpc: 'roles/delete',
  policy: bridgeOnly,
  agentScoped: false,
  status: 200,
  input: rolesDeleteRequest,
  output: rolesDeleteResponse,
  handle: ({ deps, principal, input }) => deleteRole(deps, requirePrincipal(principal), input.role),
});

/** POST /auth/exchange: the subject token in the body is the credential. */
export const authExchange = defineRoute({
  method: 'POST',
  path: '/auth/exchange',
  rpc: 'auth/exchange',
  policy: 'subject-token',
  agentScoped: false,
  status: 201,
  input: authExchangeRequest,
  output: runsSpawnResponse,
  handle: ({ deps, input }) => exchange(deps, input),
});
