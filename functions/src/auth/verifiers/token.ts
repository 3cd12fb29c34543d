/**
 * A capability token (`authorization: Bearer <JWS>`): verified against the pinned keys with no
 * store read. Its agent is then read once, because the RPC it calls still refuses a disabled
 * agent.
 */
import type { TokenPrincipal } from '../../core/principal.js';
import { agentRefusal } from '../enabled-agent.js';
import { refused, type CredentialVerifier } from '../verifier.js';

/** `Bearer <compact JWS>`; the scheme is case-insensitive (RFC 7235). */
const BEARER = /^bearer ([A-Za-z0-9_.-]{1,8192})$/i;

export const verifyCapabilityToken: CredentialVerifier<TokenPrincipal> = async (
  deps,
  _request,
  value,
) => {
  const m = BEARER.exec(value);
  if (m === null) return refused('malformed');
  if (deps.tokens === null) return refused('no_keys_configured');
  const result = deps.tokens.verify(m[1]!, deps.clock.now());
  if (!result.ok) return refused(result.reason);
  const { claims, kid } = result;
  const agent = await agentRefusal(deps.store, claims.sub);
  if (agent !== null) return refused(agent);
  return {
    ok: true,
    principal: {
      kind: 'token',
      agent_id: claims.sub,
      jti: claims.jti,
      kid,
      scope: claims.scope,
      exp: claims.exp,
    },
  };
};
