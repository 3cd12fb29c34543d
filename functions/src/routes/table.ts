/**
 * The route table: every path the service answers, each with the credentials it accepts. This
 * is the authorization policy; a path not listed here is 404, a credential not listed for a
 * route is refused before its handler runs.
 *
 * Places kept for what comes next: /delegate and /delegate/revoke, /secrets/*,
 * /settings/list and /settings/set, /tokens/register, /.well-known/agentpack-identity.
 */
import { agentsCreate, agentsDisable, agentsEnable, agentsGet } from './agents.js';
import { deviceIssue, deviceRevoke } from './device.js';
import { healthz } from './health.js';
import type { Route } from './route.js';

export const ROUTES: readonly Route[] = [
  agentsCreate,
  agentsGet,
  agentsDisable,
  agentsEnable,
  deviceIssue,
  deviceRevoke,
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
