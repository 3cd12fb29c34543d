/**
 * A delegation (`x-agentpack-delegation: <delegation_id>`) presented beside the delegate's own
 * device key or token: read from the store on every request, so `/delegate/revoke` holds from
 * the next one. Usable while it is addressed to the caller, unrevoked, unexpired and its
 * delegator enabled.
 */
import { activateDelegation } from '../../core/delegations.js';
import type { DelegatePrincipal } from '../../core/principal.js';
import { refused, type AuthDeps, type Verdict } from '../verifier.js';

export async function verifyDelegation(
  deps: AuthDeps,
  delegate: DelegatePrincipal,
  delegationId: string,
): Promise<Verdict<DelegatePrincipal>> {
  const result = await activateDelegation(deps.store, deps.clock.now(), delegate, delegationId);
  if (!result.ok) return refused(result.reason);
  return { ok: true, principal: { ...delegate, delegation: result.delegation } };
}
