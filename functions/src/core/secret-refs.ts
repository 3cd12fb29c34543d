/**
 * Secret references: `agentpack.secret://<owner>/<name>[#<version>]`, the owner an agent id or
 * `_shared`, resolved under the caller's identity. Each reference needs the right to
 * `secrets/get` that secret: the caller's own agent (within its token's scope, if it is a
 * token) on an undelegated call; on a delegated call the delegator of the delegation it
 * presents, only (within the delegation's scope, and the token's); and a shared secret granted
 * to that same agent. One reference that cannot be resolved fails the whole call with its index
 * and reason: fail closed, never passed through.
 *
 * `fallback: "shared"`: a ref to the acting agent's own secret, without a version, whose current
 * version cannot be read (never written, deleted or destroyed) resolves from the shared secret
 * of the same name instead, when that one is granted, in scope and readable. The agent's own
 * secret always wins. A ref with `#<version>` names one exact version and never falls back.
 * Every answer says where the value came from: `source: "agent"` or `"shared"` (always, with
 * or without a fallback, so a reader never has to know which mode was asked).
 *
 * A brokered secret the caller may not read (`locateVersion`, `mayReadBrokered`) fails
 * the whole call with its index: 403, `details.reason: "brokered"`. It is not unavailable, so
 * it never falls back to a shared secret; a brokered shared stand-in refuses the same way.
 */
import {
  delegationAllows,
  parseSecretRef,
  scopeAllows,
  sharedSecretResource,
} from '@agentpack-identity/protocol';
import { SHARED_OWNER, type SecretRef } from '@agentpack-identity/protocol';
import type { SecretVersionDoc } from '../ports/store.js';
import { ApiError } from './errors.js';
import { actingAgentOf, credentialScope, type AgentPrincipal } from './principal.js';
import { BROKERED_MESSAGE, chooseDelivery, deliver } from './sealed-delivery.js';
import { deliverVersions, locateVersion } from './secret-reads.js';
import type { SecretsDeps } from './secrets.js';

/** A scope entry for `secrets/get` or `secrets/resolve` (either, narrowed or not) allows a read. */
function allowsRead(scope: readonly string[], resource: string): boolean {
  return (
    scopeAllows(scope, 'secrets/get', resource) || scopeAllows(scope, 'secrets/resolve', resource)
  );
}

/**
 * True when `principal` may read the secret `name` of `owner` (the right to `secrets/get`): the
 * one decision of every reference. Policy: a call reads only for the agent it acts for
 * ({@link actingAgentOf}, as every other secrets route) — its own agent, or on a delegated call
 * the delegator and nobody else, not even the delegate itself (its own secrets need its own,
 * undelegated request, so a delegation never widens what a call reads, nor audits the
 * delegate's reads as done for the delegator) — within its credential's scope and, when
 * delegated, the delegation's.
 *
 * A shared secret (`owner` `_shared`) is checked as the resource `_shared/<name>`: only
 * `secrets/get:_shared/<name>` (or `secrets/resolve:…`) or an un-narrowed entry names it, never
 * the agent's own `secrets/get:<name>`. Whether the acting agent is granted it is decided where
 * it is read ({@link locateVersion}), with the same answer as a secret that does not exist.
 *
 * Delegated reads of shared secrets: a delegation acts for the delegator, so a delegate reads a
 * shared secret granted to the DELEGATOR (never one granted to itself) — but only when the
 * delegation's scope names it explicitly (`secrets/get:_shared/<name>` or
 * `secrets/resolve:_shared/<name>`). An un-narrowed `secrets/get` delegation covers the
 * delegator's own secrets, not the shared ones: a shared secret is not the delegator's, and a
 * grant made after the delegation must not silently widen what the delegation reaches.
 */
export function mayRead(principal: AgentPrincipal, owner: string, name: string): boolean {
  if (owner !== actingAgentOf(principal) && owner !== SHARED_OWNER) return false;
  const resource = owner === SHARED_OWNER ? sharedSecretResource(name) : name;
  const own = credentialScope(principal);
  if (own !== null && !allowsRead(own, resource)) return false;
  const delegation = principal.delegation;
  return (
    delegation === undefined ||
    delegationAllows(delegation.scope, 'secrets/get', resource) ||
    delegationAllows(delegation.scope, 'secrets/resolve', resource)
  );
}

function refused(
  index: number,
  reason: string,
  status: 'invalid_argument' | 'permission_denied' | 'not_found',
): ApiError {
  const message =
    status === 'invalid_argument'
      ? `refs[${index}] is not a secret reference`
      : reason === 'brokered'
        ? `refs[${index}]: ${BROKERED_MESSAGE}`
        : status === 'permission_denied'
          ? `refs[${index}] is not readable by the caller`
          : `refs[${index}] cannot be resolved`;
  return new ApiError(status, message, { index, reason });
}

/** Where a resolved value came from. */
export type SecretSource = 'agent' | 'shared';

/** One reference, checked: what it reads, and the shared read that may stand in for it. */
interface Plan {
  read: SecretRef;
  fallback: SecretRef | null;
}

/** Resolves every reference, in order, or none. */
export async function resolveSecretRefs(
  deps: SecretsDeps,
  principal: AgentPrincipal,
  refs: readonly string[],
  options: { seal?: boolean; fallback?: 'shared' | null } = {},
): Promise<{
  values: Array<
    { ref: string; version: number; source: SecretSource } & (
      { value: string } | { sealed: string }
    )
  >;
}> {
  const delivery = await chooseDelivery(deps.store, principal, options.seal === true);
  const acting = actingAgentOf(principal);
  const reading = { principal, delivery };
  // Every ref is checked before anything is read: a refused call reads and audits nothing.
  const plans = refs.map((ref, index): Plan => {
    const read = parseSecretRef(ref);
    if (read === null) throw refused(index, 'malformed', 'invalid_argument');
    if (!mayRead(principal, read.agent_id, read.name))
      throw refused(index, 'permission_denied', 'permission_denied');
    const shared = { agent_id: SHARED_OWNER, name: read.name };
    const fallback =
      options.fallback === 'shared' &&
      read.agent_id === acting &&
      read.version === undefined &&
      mayRead(principal, SHARED_OWNER, read.name)
        ? shared
        : null;
    return { read, fallback };
  });
  const docs: SecretVersionDoc[] = [];
  const sources: SecretSource[] = [];
  for (const [index, plan] of plans.entries()) {
    let found = await locateVersion(deps.store, reading, plan.read);
    let source: SecretSource = plan.read.agent_id === SHARED_OWNER ? 'shared' : 'agent';
    if ('reason' in found && found.reason !== 'brokered' && plan.fallback !== null) {
      const standIn = await locateVersion(deps.store, reading, plan.fallback);
      // No usable shared secret either: the answer is the agent's own (never a hint about
      // whether a shared one exists). A brokered one (granted, so known to the agent) refuses.
      if ('doc' in standIn || standIn.reason === 'brokered') {
        found = standIn;
        source = 'shared';
      }
    }
    if ('reason' in found) {
      if (found.reason === 'brokered') throw refused(index, 'brokered', 'permission_denied');
      throw refused(index, found.reason, 'not_found');
    }
    docs.push(found.doc);
    sources.push(source);
  }
  const values = await deliverVersions(deps, principal, 'secret.resolve', docs);
  return {
    values: values.map((v, k) => ({
      ref: refs[k]!,
      version: v.version,
      source: sources[k]!,
      ...deliver(delivery, v.value),
    })),
  };
}
