/**
 * The capability token ledger: what was minted, for whom, with which scope and life. It holds
 * metadata only, never a token, and tokens are verified without it (offline, from the pinned
 * keys); it is the operators' record of what is out there.
 */
import { rfc3339 } from '../ports/clock.js';
import type { CapabilityTokenDoc } from '../ports/store.js';
import type { CoreDeps } from './deps.js';
import { actorOf } from './audit.js';
import { ApiError } from './errors.js';
import type { Principal } from './principal.js';

export async function registerToken(
  deps: CoreDeps,
  principal: Principal,
  input: Omit<CapabilityTokenDoc, 'registered_at'>,
): Promise<CapabilityTokenDoc> {
  return deps.store.transact(async (tx) => {
    if ((await tx.get('capability_tokens', input.jti)) !== null) {
      throw new ApiError('already_exists', 'a token with this jti is already registered', {
        jti: input.jti,
      });
    }
    const at = rfc3339(deps.clock.now());
    const doc: CapabilityTokenDoc = { ...input, scope: [...input.scope], registered_at: at };
    tx.set('capability_tokens', input.jti, doc);
    tx.audit({
      category: 'auth',
      action: 'token.register',
      actor: actorOf(principal),
      target: { agent_id: input.sub, jti: input.jti },
      at,
      details: { scope: input.scope.join(' '), exp: input.exp, kid: input.kid },
    });
    return doc;
  });
}
