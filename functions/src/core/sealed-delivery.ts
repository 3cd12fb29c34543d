/**
 * Sealed delivery: with `seal: true`, a secret leaves the service only as libsodium's
 * `crypto_box_seal` to the calling device's pinned X25519 key, so the clear value never
 * crosses the wire. The setting `secrets.require_sealed` makes it mandatory. Policy: fail
 * closed — a caller that cannot receive a sealed value (no pinned key, or a capability token)
 * is refused, never answered in clear.
 */
import { decodeRawKey } from '@agentpack-identity/protocol';
import { sealTo } from '@agentpack-identity/protocol';
import type { StoreReader } from '../ports/store.js';
import { ApiError } from './errors.js';
import type { AgentPrincipal } from './principal.js';
import { readSetting } from './settings.js';

/** How values go out: sealed to a key, or in clear. */
export type Delivery = { sealTo: Uint8Array } | null;

/**
 * Decides the delivery of a read before anything is read (a refused read reads and audits
 * nothing). The device is the one whose key made the request (for a delegated call, the
 * delegate's).
 */
export async function chooseDelivery(
  reader: StoreReader,
  principal: AgentPrincipal,
  seal: boolean,
): Promise<Delivery> {
  const required = await readSetting(reader, 'secrets.require_sealed');
  if (!seal && !required) return null;
  const key =
    principal.kind === 'device' && principal.sealing_public_key !== null
      ? decodeRawKey(principal.sealing_public_key)
      : null;
  if (key === null) {
    throw new ApiError(
      'permission_denied',
      required && !seal
        ? 'sealed delivery is required, and this caller has no pinned sealing key'
        : 'sealed delivery needs an enrolled device key with a pinned sealing key',
      { reason: 'no_sealing_key' },
    );
  }
  if (!seal) {
    throw new ApiError('permission_denied', 'sealed delivery is required: send seal: true', {
      reason: 'seal_required',
    });
  }
  return { sealTo: key };
}

/**
 * The brokered-secret rule, the one decision of every read of a brokered secret (applied by
 * `locateVersion`, where the secret's metadata meets the delivery chosen above). Policy: a
 * brokered secret is read only sealed, by an enrolled device's own key — the host that runs a
 * credential broker — never by a run, a token, a delegated call, a plain device key, or an
 * unsealed read; so the command a broker serves, which holds only its run identity, can never
 * fetch the key around the broker. A caller that cannot receive a sealed value at all and asks
 * `seal: true` was already refused above (`no_sealing_key`, before any secret is looked up).
 */
export function mayReadBrokered(principal: AgentPrincipal, delivery: Delivery): boolean {
  return (
    delivery !== null &&
    principal.kind === 'device' &&
    principal.delegation === undefined &&
    principal.sealing_public_key !== null
  );
}

/** The message of a refused read of a brokered secret (403 with `details.reason: "brokered"`). */
export const BROKERED_MESSAGE =
  "the secret is brokered: it is read only sealed (seal: true) by an enrolled device's own key, never by a run, a token or a delegation";

/** The value as delivered: `{value}` in clear, or `{sealed}` (base64url of the sealed box). */
export function deliver(delivery: Delivery, value: string): { value: string } | { sealed: string } {
  if (delivery === null) return { value };
  return {
    sealed: Buffer.from(sealTo(delivery.sealTo, Buffer.from(value, 'utf8'))).toString('base64url'),
  };
}
