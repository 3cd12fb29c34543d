/**
 * Secret references: `agentpack.secret://<agent_id>/<name>[#<version>]`, resolved under the
 * caller's identity. Each reference needs the right to `secrets/get` that secret: the caller's
 * own agent (within its token's scope, if it is a token) on an undelegated call; on a delegated
 * call the delegator of the delegation it presents, only (within the delegation's scope, and the
 * token's). One reference that cannot be resolved fails the whole call with its index and
 * reason: fail closed, never passed through.
 */
import { parseSecretRef, scopeAllows } from '@agentpack-identity/protocol';
import { ApiError } from './errors.js';
import { actingAgentOf, credentialScope, type AgentPrincipal } from './principal.js';
import { chooseDelivery, deliver } from './sealed-delivery.js';
import { readVersions, SecretReadError, type SecretsDeps } from './secrets.js';

/** A scope entry for `secrets/get` or `secrets/resolve` (either, narrowed or not) allows a read. */
function allowsRead(scope: readonly string[], name: string): boolean {
  return scopeAllows(scope, 'secrets/get', name) || scopeAllows(scope, 'secrets/resolve', name);
}

/**
 * True when `principal` may read `agentId`'s secret `name` (the right to `secrets/get`): the
 * one decision of every reference. Policy: a call reads only for the agent it acts for
 * ({@link actingAgentOf}, as every other secrets route) — its own agent, or on a delegated call
 * the delegator and nobody else, not even the delegate itself (its own secrets need its own,
 * undelegated request, so a delegation never widens what a call reads, nor audits the
 * delegate's reads as done for the delegator) — within its credential's scope and, when
 * delegated, the delegation's.
 */
export function mayRead(principal: AgentPrincipal, agentId: string, name: string): boolean {
  if (agentId !== actingAgentOf(principal)) return false;
  const own = credentialScope(principal);
  if (own !== null && !allowsRead(own, name)) return false;
  const delegation = principal.delegation;
  return delegation === undefined || allowsRead(delegation.scope, name);
}

function refused(
  index: number,
  reason: string,
  status: 'invalid_argument' | 'permission_denied' | 'not_found',
): ApiError {
  const message =
    status === 'invalid_argument'
      ? `refs[${index}] is not a secret reference`
      : status === 'permission_denied'
        ? `refs[${index}] is not readable by the caller`
        : `refs[${index}] cannot be resolved`;
  return new ApiError(status, message, { index, reason });
}

/** Resolves every reference, in order, or none. */
export async function resolveSecretRefs(
  deps: SecretsDeps,
  principal: AgentPrincipal,
  refs: readonly string[],
  seal = false,
): Promise<{
  values: Array<{ ref: string; version: number } & ({ value: string } | { sealed: string })>;
}> {
  const delivery = await chooseDelivery(deps.store, principal, seal);
  const reads = refs.map((ref, index) => {
    const read = parseSecretRef(ref);
    if (read === null) throw refused(index, 'malformed', 'invalid_argument');
    if (!mayRead(principal, read.agent_id, read.name))
      throw refused(index, 'permission_denied', 'permission_denied');
    return read;
  });
  try {
    const values = await readVersions(deps, principal, 'secret.resolve', reads);
    return {
      values: values.map((v, k) => ({
        ref: refs[k]!,
        version: v.version,
        ...deliver(delivery, v.value),
      })),
    };
  } catch (error) {
    if (error instanceof SecretReadError) throw refused(error.index, error.reason, 'not_found');
    throw error;
  }
}
