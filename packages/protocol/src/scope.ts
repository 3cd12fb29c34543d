/**
 * Scope grammar, shared by delegations and capability tokens: a list of RPC names, each
 * optionally narrowed to one resource, e.g. `secrets/get` or `secrets/get:openai_key`, or, on
 * the reads, to one shared secret: `secrets/get:_shared/openai_key`.
 */

/** Agent RPCs that may be delegated or granted by a capability token. */
export const DELEGABLE_RPCS = [
  'agents/get',
  'secrets/put',
  'secrets/get',
  'secrets/list',
  'secrets/metadata',
  'secrets/delete',
  'secrets/undelete',
  'secrets/destroy',
  'secrets/resolve',
] as const;

export type DelegableRpc = (typeof DELEGABLE_RPCS)[number];

/**
 * The lists an agent reads about itself (its delegations, its runs): grantable to a capability
 * token and to a run, never delegable — a delegate acts for the delegator on its secrets, it
 * does not inventory the delegator's grants and runs (the list routes refuse delegated calls).
 * `device/list` is not here: the contract gives it to the bridge and device keys only.
 */
export const AGENT_LIST_RPCS = ['delegations/list', 'runs/list'] as const;

/** Delegable RPCs that act on one named resource, so a scope entry may narrow them. */
export const RESOURCE_RPCS = [
  'secrets/put',
  'secrets/get',
  'secrets/metadata',
  'secrets/delete',
  'secrets/undelete',
  'secrets/destroy',
  'secrets/resolve',
] as const;

/**
 * RPCs a capability token may carry beyond the delegable ones: a token holder may create and
 * revoke delegations for its subject (a delegated request may not; see the delegation rules).
 */
export const TOKEN_ONLY_RPCS = ['delegate', 'delegate/revoke', 'runs/spawn'] as const;

/**
 * RPCs whose scope entry may name a shared secret, `secrets/get:_shared/<name>`: the reads. A
 * shared secret is managed by operators only (the bridge key), so no agent RPC that writes or
 * inspects secrets takes a shared resource.
 */
export const SHARED_RESOURCE_RPCS = ['secrets/get', 'secrets/resolve'] as const;

/** The prefix of a shared secret's resource in a scope entry: `_shared/<name>`. */
export const SHARED_RESOURCE_PREFIX = '_shared/';

/**
 * The resource a read of the shared secret `name` is checked as: `_shared/<name>`. Distinct from
 * every agent's own secret `name`, so `secrets/get:name` never covers the shared one (an
 * un-narrowed `secrets/get` covers both).
 */
export function sharedSecretResource(name: string): string {
  return `${SHARED_RESOURCE_PREFIX}${name}`;
}

/**
 * One parsed scope entry. `resource` null means every resource of the RPC; a shared secret's
 * resource is `_shared/<name>`.
 */
export interface ScopeEntry {
  rpc: string;
  resource: string | null;
}

const ENTRY_PATTERN =
  /^([a-z]+(?:\/[a-z]+)?)(?::((?:_shared\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}))?$/;

/**
 * Parses `rpc[:resource]`; null when the text does not follow the grammar. A `_shared/<name>`
 * resource is in the grammar only on {@link SHARED_RESOURCE_RPCS}.
 */
export function parseScopeEntry(text: string): ScopeEntry | null {
  const m = ENTRY_PATTERN.exec(text);
  if (m === null) return null;
  const rpc = m[1]!;
  const resource = m[2] ?? null;
  if (
    resource !== null &&
    resource.startsWith(SHARED_RESOURCE_PREFIX) &&
    !(SHARED_RESOURCE_RPCS as readonly string[]).includes(rpc)
  ) {
    return null;
  }
  return { rpc, resource };
}

/**
 * True when `scope` allows calling `rpc` on `resource` (null when the call names no single
 * resource, e.g. a list: then only an un-narrowed entry allows it).
 */
export function scopeAllows(
  scope: readonly string[],
  rpc: string,
  resource: string | null,
): boolean {
  for (const text of scope) {
    const entry = parseScopeEntry(text);
    if (entry === null || entry.rpc !== rpc) continue;
    if (entry.resource === null) return true;
    if (resource !== null && entry.resource === resource) return true;
  }
  return false;
}

/**
 * What a delegation's scope allows: as {@link scopeAllows}, except that a shared secret's
 * resource (`_shared/<name>`) is allowed only by an entry naming it. A delegation acts for the
 * delegator, and an un-narrowed entry covers the delegator's own secrets; the shared ones are
 * not the delegator's, and a grant made after the delegation must not widen what it reaches.
 */
export function delegationAllows(
  scope: readonly string[],
  rpc: string,
  resource: string | null,
): boolean {
  if (resource !== null && resource.startsWith(SHARED_RESOURCE_PREFIX)) {
    return scope.includes(`${rpc}:${resource}`);
  }
  return scopeAllows(scope, rpc, resource);
}
