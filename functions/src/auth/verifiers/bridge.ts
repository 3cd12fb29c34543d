/** The bridge key (`x-agentpack-key`): compared in constant time against the configured set. */
import type { BridgePrincipal } from '../../core/principal.js';
import { CREDENTIAL_VALUE_PATTERN } from '@agentpack-identity/protocol';
import { refused, type CredentialVerifier } from '../verifier.js';

export const verifyBridgeKey: CredentialVerifier<BridgePrincipal> = async (
  deps,
  _request,
  value,
) => {
  if (!CREDENTIAL_VALUE_PATTERN.test(value)) return refused('malformed');
  const id = deps.bridgeKeys.match(value);
  if (id === null) return refused('unknown');
  return { ok: true, principal: { kind: 'bridge', bridge_key_id: id } };
};
