/**
 * The route table: every path the service answers, each with the callers it accepts. This is
 * the authorization policy; a path not listed here is 404, a caller not listed for a route is
 * refused before its handler runs.
 */
import { agentsCreate, agentsDisable, agentsEnable, agentsGet, agentsRetire } from './agents.js';
import { attestationsVerify } from './attestations.js';
import { deviceIssue, deviceRevoke } from './device.js';
import { deviceEnroll, enrollmentsCreate } from './enrollment.js';
import { delegate, delegateRevoke } from './delegate.js';
import { healthz } from './health.js';
import { agentsList, auditQuery, delegationsList, deviceList, runsList } from './lists.js';
import {
  authExchange,
  issuersDelete,
  issuersList,
  issuersPut,
  rolesDelete,
  rolesGet,
  rolesList,
  rolesPut,
} from './federation.js';
import { openApiRoute } from './openapi.js';
import { runsComplete, runsRevoke, runsSpawn, runsToken, runWellKnown } from './runs.js';
import {
  secretsDelete,
  secretsDestroy,
  secretsGet,
  secretsGrant,
  secretsList,
  secretsMetadata,
  secretsPut,
  secretsResolve,
  secretsUndelete,
  secretsUngrant,
} from './secrets.js';
import { settingsList, settingsSet } from './settings.js';
import { tokensRegister } from './tokens.js';
import { jwksJson, openidConfiguration, wellKnown } from './well-known.js';
import type { Route } from './route.js';

/** `GET /openapi.json`: the document of this very table (hence the thunk). */
const openapiJson = openApiRoute(() => ROUTES);

export const ROUTES: readonly Route[] = [
  agentsCreate,
  agentsGet,
  agentsDisable,
  agentsEnable,
  agentsRetire,
  deviceIssue,
  deviceRevoke,
  enrollmentsCreate,
  deviceEnroll,
  attestationsVerify,
  delegate,
  delegateRevoke,
  secretsPut,
  secretsGet,
  secretsList,
  secretsMetadata,
  secretsDelete,
  secretsUndelete,
  secretsDestroy,
  secretsResolve,
  secretsGrant,
  secretsUngrant,
  tokensRegister,
  settingsList,
  settingsSet,
  runsSpawn,
  runsComplete,
  runsRevoke,
  runsToken,
  issuersPut,
  issuersList,
  issuersDelete,
  rolesPut,
  rolesGet,
  rolesList,
  rolesDelete,
  authExchange,
  agentsList,
  deviceList,
  delegationsList,
  runsList,
  auditQuery,
  wellKnown,
  jwksJson,
  openidConfiguration,
  runWellKnown,
  healthz,
  openapiJson,
];

/** Finds the route of a path: exact paths first, then prefixes; with the rest of the path. */
export type RouteLookup = (path: string) => { route: Route; rest: string } | undefined;

/** Routes by path, for the HTTP core's lookup. */
export function routeIndex(routes: readonly Route[]): RouteLookup {
  const exact = new Map<string, Route>();
  const prefixes: Route[] = [];
  for (const route of routes) {
    if (exact.has(route.path) || prefixes.some((p) => p.path === route.path)) {
      throw new Error(`route table: ${route.path} is declared twice`);
    }
    if (route.match === 'prefix') prefixes.push(route);
    else exact.set(route.path, route);
  }
  return (path) => {
    const route = exact.get(path);
    if (route !== undefined) return { route, rest: '' };
    for (const p of prefixes) {
      // One segment after the prefix, nothing more: no traversal, no nested paths.
      const rest = path.startsWith(p.path) ? path.slice(p.path.length) : null;
      if (rest !== null && /^[A-Za-z0-9_-]{1,64}$/.test(rest)) return { route: p, rest };
    }
    return undefined;
  };
}
