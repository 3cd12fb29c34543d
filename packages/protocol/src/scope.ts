/**
 * Scope grammar, shared by delegations and capability tokens: a list of RPC names, each
 * optionally narrowed to one resource, e.g. `secrets/get` or `secrets/get:openai_key`.
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

/** One parsed scope entry. `resource` null means every resource of the RPC. */
export interface ScopeEntry {
  rpc: string;
  resource: string | null;
}

const ENTRY_PATTERN = /^([a-z]+(?:\/[a-z]+)?)(?::([A-Za-z0-9][A-Za-z0-9_.-]{0,127}))?$/;

/** Parses `rpc[:resource]`; null when the text does not follow the grammar. */
export function parseScopeEntry(text: string): ScopeEntry | null {
  const m = ENTRY_PATTERN.exec(text);
  if (m === null) return null;
  return { rpc: m[1]!, resource: m[2] ?? null };
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
