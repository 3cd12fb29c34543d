/**
 * Headers → {@link Principal}. Exactly one primary credential per request; a repeated or
 * malformed credential header is 400, a credential that does not verify is 401. Every refusal
 * is logged with a reason code (never the presented value) and the store is not written.
 */
import type { CoreDeps } from '../core/agents.js';
import { authenticateDeviceKey } from '../core/device-keys.js';
import { ApiError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { Logger } from '../ports/logger.js';
import type { BridgeKeyring } from './bridge-keys.js';

/** The credential headers this service reads. */
export const CREDENTIAL_HEADERS = {
  bridge: 'x-agentpack-key',
  device: 'x-agentpack-device-key',
  bearer: 'authorization',
} as const;

/** The `WWW-Authenticate` challenge sent with every 401. */
export const WWW_AUTHENTICATE =
  'AgentpackKey realm="agentpack-identity", header="x-agentpack-key" or "x-agentpack-device-key"';

export interface AuthDeps extends CoreDeps {
  bridgeKeys: BridgeKeyring;
  logger: Logger;
}

/** A 401 whose reason goes to the log, not to the caller. */
function refuse(deps: AuthDeps, path: string, credential: string, reason: string): never {
  deps.logger.warn('auth.failed', { credential, reason, path });
  throw new ApiError('unauthenticated', 'the credential is not valid');
}

/** Printable ASCII without spaces: anything else in a credential header is malformed. */
const CREDENTIAL_VALUE = /^[\x21-\x7e]{1,512}$/;

function single(
  deps: AuthDeps,
  path: string,
  headers: Readonly<Record<string, readonly string[] | undefined>>,
  name: string,
): string | undefined {
  const values = headers[name];
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1) {
    deps.logger.warn('auth.failed', { credential: name, reason: 'repeated_header', path });
    throw new ApiError('invalid_argument', `the ${name} header must appear once`);
  }
  return values[0];
}

/**
 * Verifies the request's credential. Returns null when the request carries none (the caller
 * decides whether the route is public). Never caches: every device key is checked against the
 * store so revocation and disabling hold from the next request on.
 */
export async function authenticate(
  deps: AuthDeps,
  path: string,
  headers: Readonly<Record<string, readonly string[] | undefined>>,
): Promise<Principal | null> {
  const bridge = single(deps, path, headers, CREDENTIAL_HEADERS.bridge);
  const device = single(deps, path, headers, CREDENTIAL_HEADERS.device);
  const bearer = single(deps, path, headers, CREDENTIAL_HEADERS.bearer);
  const present = [bridge, device, bearer].filter((v) => v !== undefined);
  if (present.length === 0) return null;
  if (present.length > 1) {
    deps.logger.warn('auth.failed', { credential: 'multiple', reason: 'ambiguous', path });
    throw new ApiError('invalid_argument', 'send exactly one credential per request');
  }
  if (bridge !== undefined) {
    if (!CREDENTIAL_VALUE.test(bridge)) refuse(deps, path, 'bridge', 'malformed');
    const id = deps.bridgeKeys.match(bridge);
    if (id === null) refuse(deps, path, 'bridge', 'unknown');
    return { kind: 'bridge', bridge_key_id: id };
  }
  if (device !== undefined) {
    if (!CREDENTIAL_VALUE.test(device)) refuse(deps, path, 'device', 'malformed');
    const result = await authenticateDeviceKey(deps, device);
    if (!result.ok) {
      if (result.reason === 'agent_disabled') {
        deps.logger.warn('auth.failed', { credential: 'device', reason: result.reason, path });
        throw new ApiError('permission_denied', 'the agent is disabled');
      }
      refuse(deps, path, 'device', result.reason);
    }
    return result.principal;
  }
  // Capability tokens arrive with the next capability; until then a bearer token is refused.
  return refuse(deps, path, 'bearer', 'unsupported');
}
