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

/** The value as delivered: `{value}` in clear, or `{sealed}` (base64url of the sealed box). */
export function deliver(delivery: Delivery, value: string): { value: string } | { sealed: string } {
  if (delivery === null) return { value };
  return {
    sealed: Buffer.from(sealTo(delivery.sealTo, Buffer.from(value, 'utf8'))).toString('base64url'),
  };
}
