/**
 * An agent's device key read from its private file, and the headers of a request made with it:
 * when the file is the `device-key` of a `device enroll` directory, every request is also
 * signed with that directory's signing.key (a service may require signed requests of an
 * enrolled device).
 */
import type { KeyObject } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import {
  DEVICE_FILES,
  ed25519PrivateKeyObject,
  isWellFormedDeviceKey,
  signRequest,
  CREDENTIAL_HEADERS,
} from '@agentpack-identity/protocol';
import { CliError, nowMs, type CliIo } from './io.js';
import { isFile, readPrivateFile, readRawKeyFile } from './private-files.js';

export interface DeviceCredential {
  deviceKey: string;
  /** The enrolled device's signing key, or null for a bare device key. */
  signingKey: KeyObject | null;
  /** The directory of an enrolled device (its sealing.key opens sealed answers), or null. */
  deviceDir: string | null;
}

/**
 * The device key of `file`, and the signing key of its enrolled device when `file` is the
 * `device-key` of a `device enroll` directory (signed requests may be required of it).
 */
export function readDeviceCredential(file: string): DeviceCredential {
  const deviceKey = readPrivateFile(file);
  if (!isWellFormedDeviceKey(deviceKey)) throw new CliError(`${file} does not hold a device key`);
  const dir = dirname(file);
  const enrolled =
    basename(file) === DEVICE_FILES.deviceKey &&
    isFile(join(dir, DEVICE_FILES.signingKey)) &&
    isFile(join(dir, DEVICE_FILES.enrollment));
  if (!enrolled) return { deviceKey, signingKey: null, deviceDir: null };
  const seed = readRawKeyFile(dir, DEVICE_FILES.signingKey);
  try {
    return { deviceKey, signingKey: ed25519PrivateKeyObject(seed), deviceDir: dir };
  } finally {
    seed.fill(0);
  }
}

/** The headers of a POST of `body` to the route `path` with the device's credential. */
export function deviceHeaders(
  device: DeviceCredential,
  path: string,
  body: string,
  io: CliIo,
): Record<string, string> {
  const headers: Record<string, string> = { [CREDENTIAL_HEADERS.device]: device.deviceKey };
  if (device.signingKey !== null) {
    Object.assign(
      headers,
      signRequest({ method: 'POST', path, body, signingSeed: device.signingKey, nowMs: nowMs(io) }),
    );
  }
  return headers;
}
