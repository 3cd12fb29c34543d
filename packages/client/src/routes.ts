/**
 * Every route of the service, as the client calls it: method, path, the request schema the
 * service validates the body with and the schema of its answer — both the protocol package's,
 * the very objects the service's route table names, so the client's types and checks cannot
 * drift from the server's — plus whether the route takes a header credential and whether a
 * failed attempt may be repeated.
 *
 * Retry policy (see the README): only calls that are safe to repeat are retried —
 * `read`: reads, lists and public documents; `idempotent`: writes whose repeat leaves the same
 * state and answers alike (disable, enable, retire, revoke a delegation or a run, grant and
 * ungrant, settings/set, issuers/put, roles/put). Everything else (`never`) is sent once: a
 * `secrets/put` always writes a new version — even with `cas` a repeat after a lost answer
 * would be refused 409 and look like someone else's write —, a spawn makes a new run, an issue a
 * new key, a delete or destroy of "the current version" may hit the next one.
 */
import type { z } from 'zod';
import {
  agentResponse,
  agentsCreateRequest,
  agentsGetRequest,
  agentsListRequest,
  agentsListResponse,
  agentsRetireRequest,
  agentsRetireResponse,
  agentToggleRequest,
  attestationsVerifyRequest,
  attestationsVerifyResponse,
  auditQueryRequest,
  auditQueryResponse,
  authExchangeRequest,
  delegateRequest,
  delegateRevokeRequest,
  delegateRevokeResponse,
  delegationResponse,
  delegationsListRequest,
  delegationsListResponse,
  deviceEnrollRequest,
  deviceEnrollResponse,
  deviceIssueRequest,
  deviceIssueResponse,
  deviceListRequest,
  deviceListResponse,
  deviceRevokeRequest,
  deviceRevokeResponse,
  emptyRequest,
  enrollmentCreateRequest,
  enrollmentCreateResponse,
  healthzResponse,
  issuerResponse,
  issuersDeleteRequest,
  issuersDeleteResponse,
  issuersListRequest,
  issuersListResponse,
  issuersPutRequest,
  jwksResponse,
  openApiDocumentResponse,
  openidConfigurationResponse,
  roleResponse,
  rolesDeleteRequest,
  rolesDeleteResponse,
  rolesGetRequest,
  rolesListRequest,
  rolesListResponse,
  rolesPutRequest,
  runIdentityResponse,
  runsCompleteRequest,
  runsCompleteResponse,
  runsListRequest,
  runsListResponse,
  runsRevokeRequest,
  runsRevokeResponse,
  runsSpawnRequest,
  runsSpawnResponse,
  runsTokenRequest,
  runsTokenResponse,
  secretsChangeRequest,
  secretsDestroyRequest,
  secretsGetRequest,
  secretsGetResponse,
  secretsGrantRequest,
  secretsGrantResponse,
  secretsListRequest,
  secretsListResponse,
  secretsMetadataRequest,
  secretsMetadataResponse,
  secretsPutRequest,
  secretsPutResponse,
  secretsResolveRequest,
  secretsResolveResponse,
  secretsVersionsResponse,
  settingsListRequest,
  settingsListResponse,
  settingsSetRequest,
  settingsSetResponse,
  tokensRegisterRequest,
  tokensRegisterResponse,
  wellKnownResponse,
} from '@agentpack-identity/protocol';

/** Whether a failed attempt may be repeated (see the module comment). */
export type RetryClass = 'read' | 'idempotent' | 'never';

export interface RouteDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST';
  path: string;
  input: I;
  output: O;
  /** `credential`: the caller's credential is sent (and signed); `none`: nothing is sent. */
  auth: 'credential' | 'none';
  retry: RetryClass;
}

function post<I extends z.ZodType, O extends z.ZodType>(
  path: string,
  input: I,
  output: O,
  retry: RetryClass,
  auth: 'credential' | 'none' = 'credential',
): RouteDef<I, O> {
  return { method: 'POST', path, input, output, auth, retry };
}

function get<O extends z.ZodType>(path: string, output: O): RouteDef<typeof emptyRequest, O> {
  return { method: 'GET', path, input: emptyRequest, output, auth: 'none', retry: 'read' };
}

/** The routes by RPC name (the service's `rpc`, also the scope grammar's name). */
export const ROUTES = {
  'agents/create': post('/agents/create', agentsCreateRequest, agentResponse, 'never'),
  'agents/get': post('/agents/get', agentsGetRequest, agentResponse, 'read'),
  'agents/list': post('/agents/list', agentsListRequest, agentsListResponse, 'read'),
  'agents/disable': post('/agents/disable', agentToggleRequest, agentResponse, 'idempotent'),
  'agents/enable': post('/agents/enable', agentToggleRequest, agentResponse, 'idempotent'),
  'agents/retire': post('/agents/retire', agentsRetireRequest, agentsRetireResponse, 'idempotent'),
  'device/issue': post('/device/issue', deviceIssueRequest, deviceIssueResponse, 'never'),
  'device/revoke': post('/device/revoke', deviceRevokeRequest, deviceRevokeResponse, 'never'),
  'device/list': post('/device/list', deviceListRequest, deviceListResponse, 'read'),
  'device/enrollments/create': post(
    '/device/enrollments/create',
    enrollmentCreateRequest,
    enrollmentCreateResponse,
    'never',
  ),
  'device/enroll': post(
    '/device/enroll',
    deviceEnrollRequest,
    deviceEnrollResponse,
    'never',
    'none',
  ),
  'attestations/verify': post(
    '/attestations/verify',
    attestationsVerifyRequest,
    attestationsVerifyResponse,
    'read',
  ),
  delegate: post('/delegate', delegateRequest, delegationResponse, 'never'),
  'delegate/revoke': post(
    '/delegate/revoke',
    delegateRevokeRequest,
    delegateRevokeResponse,
    'idempotent',
  ),
  'delegations/list': post(
    '/delegations/list',
    delegationsListRequest,
    delegationsListResponse,
    'read',
  ),
  'secrets/put': post('/secrets/put', secretsPutRequest, secretsPutResponse, 'never'),
  'secrets/get': post('/secrets/get', secretsGetRequest, secretsGetResponse, 'read'),
  'secrets/list': post('/secrets/list', secretsListRequest, secretsListResponse, 'read'),
  'secrets/metadata': post(
    '/secrets/metadata',
    secretsMetadataRequest,
    secretsMetadataResponse,
    'read',
  ),
  'secrets/delete': post('/secrets/delete', secretsChangeRequest, secretsVersionsResponse, 'never'),
  'secrets/undelete': post(
    '/secrets/undelete',
    secretsChangeRequest,
    secretsVersionsResponse,
    'never',
  ),
  'secrets/destroy': post(
    '/secrets/destroy',
    secretsDestroyRequest,
    secretsVersionsResponse,
    'never',
  ),
  'secrets/resolve': post(
    '/secrets/resolve',
    secretsResolveRequest,
    secretsResolveResponse,
    'read',
  ),
  'secrets/grant': post('/secrets/grant', secretsGrantRequest, secretsGrantResponse, 'idempotent'),
  'secrets/ungrant': post(
    '/secrets/ungrant',
    secretsGrantRequest,
    secretsGrantResponse,
    'idempotent',
  ),
  'tokens/register': post(
    '/tokens/register',
    tokensRegisterRequest,
    tokensRegisterResponse,
    'never',
  ),
  'settings/list': post('/settings/list', settingsListRequest, settingsListResponse, 'read'),
  'settings/set': post('/settings/set', settingsSetRequest, settingsSetResponse, 'idempotent'),
  'runs/spawn': post('/runs/spawn', runsSpawnRequest, runsSpawnResponse, 'never'),
  'runs/complete': post('/runs/complete', runsCompleteRequest, runsCompleteResponse, 'never'),
  'runs/revoke': post('/runs/revoke', runsRevokeRequest, runsRevokeResponse, 'idempotent'),
  'runs/token': post('/runs/token', runsTokenRequest, runsTokenResponse, 'never'),
  'runs/list': post('/runs/list', runsListRequest, runsListResponse, 'read'),
  'issuers/put': post('/issuers/put', issuersPutRequest, issuerResponse, 'idempotent'),
  'issuers/list': post('/issuers/list', issuersListRequest, issuersListResponse, 'read'),
  'issuers/delete': post('/issuers/delete', issuersDeleteRequest, issuersDeleteResponse, 'never'),
  'roles/put': post('/roles/put', rolesPutRequest, roleResponse, 'idempotent'),
  'roles/get': post('/roles/get', rolesGetRequest, roleResponse, 'read'),
  'roles/list': post('/roles/list', rolesListRequest, rolesListResponse, 'read'),
  'roles/delete': post('/roles/delete', rolesDeleteRequest, rolesDeleteResponse, 'never'),
  'auth/exchange': post('/auth/exchange', authExchangeRequest, runsSpawnResponse, 'never', 'none'),
  'audit/query': post('/audit/query', auditQueryRequest, auditQueryResponse, 'read'),
  '.well-known/agentpack-identity': get('/.well-known/agentpack-identity', wellKnownResponse),
  '.well-known/jwks.json': get('/.well-known/jwks.json', jwksResponse),
  '.well-known/openid-configuration': get(
    '/.well-known/openid-configuration',
    openidConfigurationResponse,
  ),
  '.well-known/agentpack-agent-identity': get(
    '/.well-known/agentpack-agent-identity/',
    runIdentityResponse,
  ),
  healthz: get('/healthz', healthzResponse),
  'openapi.json': get('/openapi.json', openApiDocumentResponse),
} as const satisfies Record<string, RouteDef>;

/** The RPC names the client knows. */
export type RpcName = keyof typeof ROUTES;

/** What a call of `R` takes: the input of the service's own request schema. */
export type RpcInput<R extends RpcName> = z.input<(typeof ROUTES)[R]['input']>;

/** What a call of `R` answers: the output of the service's own response schema. */
export type RpcOutput<R extends RpcName> = z.output<(typeof ROUTES)[R]['output']>;
