/**
 * A device key (`x-agentpack-device-key`), read from the store on every request (no cache, so
 * revocation holds from the next request), then its agent, then — when the request carries
 * them — the signed-request headers. Policy: once `device.require_signed_requests` is on, an
 * enrolled device's bearer key alone is useless.
 */
import { authenticateDeviceKey } from '../../core/device-keys.js';
import type { DevicePrincipal } from '../../core/principal.js';
import { readSetting } from '../../core/settings.js';
import { checkSignedRequest } from '../../core/signed-requests.js';
import { agentRefusal } from '../enabled-agent.js';
import { CREDENTIAL_VALUE_PATTERN } from '@agentpack-identity/protocol';
import { refused, signatureHeaders, type CredentialVerifier } from '../verifier.js';

export const verifyDeviceKey: CredentialVerifier<DevicePrincipal> = async (
  deps,
  request,
  value,
) => {
  if (!CREDENTIAL_VALUE_PATTERN.test(value)) return refused('malformed');
  const result = await authenticateDeviceKey(deps, value);
  if (!result.ok) return refused(result.reason);
  const agent = await agentRefusal(deps.store, result.doc.agent_id);
  if (agent !== null) return refused(agent);
  const parts = signatureHeaders(request);
  if (typeof parts === 'object' && 'refusal' in parts) return { ok: false, refusal: parts.refusal };
  if (parts === 'partial') return refused('malformed_signature_headers');
  if (parts !== 'none') {
    const refusal = await checkSignedRequest(deps, result.doc, request, parts);
    if (refusal !== null) return refused(refusal);
  } else if (
    typeof result.doc.signing_public_key === 'string' &&
    (await readSetting(deps.store, 'device.require_signed_requests'))
  ) {
    return refused('signature_required');
  }
  return { ok: true, principal: result.principal };
};
