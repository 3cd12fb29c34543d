/**
 * Enrolling a device from code: fresh key pairs made here (the private halves never leave this
 * process), `/device/enroll` with the one-time code, and the device key opened from the sealed
 * answer — the credential of an enrolled device, ready for `createClient`.
 */
import { DEVICE_KEY_PATTERN } from '@agentpack-identity/protocol';
import { sha256 } from '@noble/hashes/sha2.js';
import type { ClientOptions } from './api.js';
import { createClient } from './client.js';
import { cryptoBackend, type CryptoChoice } from './crypto/backend.js';
import { fromBase64Url, fromUtf8, randomBytes, toBase64Url } from './crypto/bytes.js';
import type { EnrolledDeviceCredential } from './credentials.js';
import { AgentpackError } from './errors.js';
import type { RpcOutput } from './routes.js';
import type { CallOptions } from './transport.js';

/** A device's two key pairs, raw 32-byte keys (`signing.privateKey` is the Ed25519 seed). */
export interface DeviceKeyPairs {
  sealing: { publicKey: Uint8Array; privateKey: Uint8Array };
  signing: { publicKey: Uint8Array; privateKey: Uint8Array };
}

/** Fresh X25519 (sealing) and Ed25519 (signing) key pairs from the runtime's CSPRNG. */
export async function generateDeviceKeys(crypto: CryptoChoice = 'auto'): Promise<DeviceKeyPairs> {
  const backend = await cryptoBackend(crypto);
  const sealing = randomBytes(32);
  const signing = randomBytes(32);
  return {
    sealing: { publicKey: backend.x25519PublicKey(sealing), privateKey: sealing },
    signing: { publicKey: backend.ed25519PublicKey(signing), privateKey: signing },
  };
}

/**
 * A device's fingerprint, `SHA256:` + base64url(SHA-256(sealing public key ‖ signing public
 * key)): what an operator compares out of band (`expected_fingerprint`).
 */
export function deviceFingerprint(
  sealingPublicKey: Uint8Array,
  signingPublicKey: Uint8Array,
): string {
  if (sealingPublicKey.length !== 32 || signingPublicKey.length !== 32) {
    throw new TypeError('a fingerprint is taken over two 32-byte public keys');
  }
  const both = new Uint8Array(64);
  both.set(sealingPublicKey, 0);
  both.set(signingPublicKey, 32);
  return `SHA256:${toBase64Url(sha256(both))}`;
}

export interface EnrollDeviceOptions extends Omit<ClientOptions, 'credential'> {
  /** The one-time enrollment code (`apen_…`) an operator made with `device/enrollments/create`. */
  code: string;
  label?: string;
  /** The keys to pin; fresh ones by default. */
  keys?: DeviceKeyPairs;
  signal?: CallOptions['signal'];
}

export interface EnrolledDevice {
  /** The credential for `createClient` (keep it as secret as the keys in it). */
  credential: EnrolledDeviceCredential;
  /** The pinned key pairs. */
  keys: DeviceKeyPairs;
  /** The service's answer, without the sealed device key. */
  enrollment: Omit<RpcOutput<'device/enroll'>, 'sealed_device_key'>;
}

/**
 * Enrolls this device: pins fresh (or the given) keys with the one-time `code` and opens the
 * sealed device key. Refuses an answer whose fingerprint is not the keys' own.
 *
 * @example
 * const { credential } = await enrollDevice({ url, code });
 * const client = createClient({ url, credential });
 */
export async function enrollDevice(options: EnrollDeviceOptions): Promise<EnrolledDevice> {
  const { code, label, keys: given, signal, ...clientOptions } = options;
  const keys = given ?? (await generateDeviceKeys(options.crypto));
  const backend = await cryptoBackend(options.crypto ?? 'auto');
  const client = createClient(clientOptions);
  const answer = await client.device.enroll(
    {
      code,
      sealing_public_key: toBase64Url(keys.sealing.publicKey),
      signing_public_key: toBase64Url(keys.signing.publicKey),
      ...(label === undefined ? {} : { label }),
    },
    signal === undefined ? {} : { signal },
  );
  const { sealed_device_key: sealed, ...enrollment } = answer;
  const box = fromBase64Url(sealed);
  const opened =
    box === null ? null : backend.openSealed(box, keys.sealing.publicKey, keys.sealing.privateKey);
  const deviceKey = opened === null ? null : fromUtf8(opened);
  if (deviceKey === null || !DEVICE_KEY_PATTERN.test(deviceKey)) {
    throw new AgentpackError({
      code: 'bad_response',
      message: "device/enroll: the sealed device key does not open with this device's key",
      rpc: 'device/enroll',
    });
  }
  if (
    enrollment.fingerprint !== deviceFingerprint(keys.sealing.publicKey, keys.signing.publicKey)
  ) {
    throw new AgentpackError({
      code: 'bad_response',
      message: "device/enroll: the service pinned other keys than this device's",
      rpc: 'device/enroll',
    });
  }
  return {
    credential: {
      kind: 'enrolled',
      deviceKey,
      signingSeed: keys.signing.privateKey,
      sealingKey: keys.sealing.privateKey,
      sealingPublicKey: keys.sealing.publicKey,
    },
    keys,
    enrollment,
  };
}
