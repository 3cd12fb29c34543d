/**
 * The route table: every path the service answers, each with the callers it accepts. This is
 * the authorization policy; a path not listed here is 404, a caller not listed for a route is
 * refused before its handler runs.
 */
import { agentsCreate, agentsDisable, agentsEnable, agentsGet } from './agents.js';
import { attestationsVerify } from './attestations.js';
import { deviceIssue, deviceRevoke } from './device.js';
import { deviceEnroll, enrollmentsCreate } from './enrollment.js';
import { delegate, delegateRevoke } from './delegate.js';
import { healthz } from './health.js';
import {
  secretsDelete,
  secretsDestroy,
  secretsGet,
  secretsList,
  secretsMetadata,
  secretsPut,
  secretsResolve,
  secretsUndelete,
} from './secrets.js';
import { settingsList, settingsSet } from './settings.js';
import { tokensRegister } from './tokens.js';
import { wellKnown } from './well-known.js';
import type { Route } from './route.js';

export const ROUTES: readonly Route[] = [
  agentsCreate,
  agentsGet,
  agentsDisable,
  agentsEnable,
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
  tokensRegister,
  settingsList,
  settingsSet,
  wellKnown,
  healthz,
];

/** Routes by path, for the HTTP core's lookup. */
export function routeIndex(routes: readonly Route[]): ReadonlyMap<string, Route> {
  const index = new Map<string, Route>();
  for (const route of routes) {
    if (index.has(route.path)) throw new Error(`route table: ${route.path} is declared twice`);
    index.set(route.path, route);
  }
  return index;
}
