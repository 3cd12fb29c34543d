/**
 * Who is calling, as proven by verified credentials. Built by the auth layer, consumed by the
 * route table's policy and by the core.
 *
 * A delegated call is the delegate's own principal (device key or capability token) plus the
 * delegation it presented: it acts for the delegation's `from_agent`, within its scope.
 */
export type Principal = BridgePrincipal | DevicePrincipal | TokenPrincipal | RunPrincipal;

/** The project bridge key: operators and the MTA. */
export interface BridgePrincipal {
  kind: 'bridge';
  /** A stable, non-secret handle of the bridge key used (a short digest), for the audit. */
  bridge_key_id: string;
  delegation?: undefined;
}

/** A device key: exactly one agent. */
export interface DevicePrincipal {
  kind: 'device';
  agent_id: string;
  key_id: string;
  /** The digest of the presented key: the store id of its record. */
  key_digest: string;
  /** The device's pinned X25519 key (base64url) when it is enrolled: sealed reads go to it. */
  sealing_public_key: string | null;
  /** When the key expires (RFC 3339), or null for a key without an end. */
  expires_at: string | null;
  delegation?: ActiveDelegation;
}

/** A capability token, verified offline: one agent, within the token's scope. */
export interface TokenPrincipal {
  kind: 'token';
  agent_id: string;
  jti: string;
  kid: string;
  scope: readonly string[];
  /** The token's `exp` (seconds since the epoch). */
  exp: number;
  delegation?: ActiveDelegation;
}

/**
 * An ephemeral run, authenticated by a request signed with its own key: one agent, within the
 * run's scope, until it expires, completes or is revoked (it or any ancestor).
 */
export interface RunPrincipal {
  kind: 'run';
  agent_id: string;
  run_id: string;
  root_run_id: string;
  lineage: readonly string[];
  scope: readonly string[];
  expires_at: string;
  delegation?: undefined;
}

/** A delegation presented with a request, already checked to be live and addressed to the caller. */
export interface ActiveDelegation {
  delegation_id: string;
  from_agent: string;
  scope: readonly string[];
  expires_at: string;
}

/** The agent-bound principals (everything but the bridge). */
export type AgentPrincipal = DevicePrincipal | TokenPrincipal | RunPrincipal;

/** The principals that may present a delegation (a run may not). */
export type DelegatePrincipal = DevicePrincipal | TokenPrincipal;

/**
 * The scope a principal's own credential is limited to: a token's or a run's; null for a
 * device key (its agent's full rights).
 */
export function credentialScope(principal: AgentPrincipal): readonly string[] | null {
  return principal.kind === 'token' || principal.kind === 'run' ? principal.scope : null;
}

/**
 * The kinds of caller a route can accept: a credential kind, or `delegated` for a device key or
 * token presented together with a delegation.
 */
export type CallerKind = Principal['kind'] | 'delegated';

export const CALLER_KINDS: readonly CallerKind[] = [
  'bridge',
  'device',
  'token',
  'run',
  'delegated',
];

/** The caller kind of a principal, as the route policy sees it. */
export function callerKind(principal: Principal): CallerKind {
  return principal.delegation === undefined ? principal.kind : 'delegated';
}

/** The agent a bound principal acts for: the delegator on a delegated call, else its own. */
export function actingAgentOf(principal: AgentPrincipal): string {
  return principal.delegation?.from_agent ?? principal.agent_id;
}

/**
 * When the principal's authority ends (ms since the epoch), or null when nothing bounds it (the
 * bridge, a device key without expiry): the earliest of its credential's expiry and, on a
 * delegated call, the delegation's.
 */
export function authorityEndMs(principal: Principal): number | null {
  if (principal.kind === 'bridge') return null;
  const own =
    principal.kind === 'token'
      ? principal.exp * 1000
      : principal.expires_at === null
        ? null
        : Date.parse(principal.expires_at);
  const delegated =
    principal.delegation === undefined ? null : Date.parse(principal.delegation.expires_at);
  if (own === null) return delegated;
  return delegated === null ? own : Math.min(own, delegated);
}

/**
 * The one expiry rule of derived credentials: a run, a delegation or a device key made by a
 * principal never outlives it. `wantedMs` null means "no end of its own".
 */
export function clampToMaker(principal: Principal, wantedMs: number | null): number | null {
  const end = authorityEndMs(principal);
  if (end === null) return wantedMs;
  return wantedMs === null ? end : Math.min(wantedMs, end);
}
