/**
 * The brokered keys, read with the host's enrolled device: one `/secrets/resolve` with
 * `seal: true`, signed as the device, each answer opened in memory with the device's sealing
 * key into a Buffer (the caller zeroes it). A clear answer is refused: brokered keys travel
 * only sealed.
 */
import { join } from 'node:path';
import { DEVICE_FILES, openSealed, sealingPublicKeyOf } from '@agentpack-identity/protocol';
import { deviceHeaders, readDeviceCredential } from '../device-credential.js';
import { CliError, type CliIo } from '../io.js';
import { readRawKeyFile } from '../private-files.js';
import { answerObject, post, REQUEST_TIMEOUT_MS } from '../service.js';

/** A key as it may go in a header: printable ASCII, no spaces around, bounded. */
const HEADER_SAFE = /^[\x21-\x7e]([\x20-\x7e]{0,4094}[\x21-\x7e])?$/;

/** The keys of `refs` (in order), read sealed by the enrolled device in `deviceDir`. */
export async function readBrokeredKeys(
  url: string,
  deviceDir: string,
  refs: readonly string[],
  io: CliIo,
): Promise<Buffer[]> {
  const failure = 'cannot read the brokered keys with the host’s device';
  const device = readDeviceCredential(join(deviceDir, DEVICE_FILES.deviceKey));
  if (device.deviceDir === null) {
    throw new CliError(
      `${failure}: ${deviceDir} is not an enrolled device directory (device keygen, device enroll)`,
    );
  }
  const path = '/secrets/resolve';
  const body = JSON.stringify({ refs, seal: true });
  const res = await post(
    `${url}${path}`,
    deviceHeaders(device, path, body, io),
    body,
    failure,
    REQUEST_TIMEOUT_MS,
  );
  const answer = answerObject(res.status, res.text, failure, (s) => s === 200);
  const values = answer['values'];
  if (!Array.isArray(values) || values.length !== refs.length) {
    throw new CliError(`${failure}: the answer does not have one value per reference`);
  }
  const privateKey = readRawKeyFile(deviceDir, DEVICE_FILES.sealingKey);
  const keys: Buffer[] = [];
  try {
    const publicKey = sealingPublicKeyOf(privateKey);
    values.forEach((item: unknown, index) => {
      const { ref, sealed } = (item ?? {}) as { ref?: unknown; sealed?: unknown };
      if (ref !== refs[index])
        throw new CliError(`${failure}: answer ${index} is not for ${refs[index]}`);
      if (typeof sealed !== 'string') {
        throw new CliError(`${failure}: ${refs[index]} was not answered sealed`);
      }
      const opened = openSealed(Buffer.from(sealed, 'base64url'), publicKey, privateKey);
      if (opened === null) {
        throw new CliError(
          `${failure}: ${refs[index]} was not sealed to this device, or was altered`,
        );
      }
      const key = Buffer.from(opened);
      opened.fill(0);
      if (!HEADER_SAFE.test(key.toString('latin1'))) {
        key.fill(0);
        throw new CliError(`${failure}: ${refs[index]} is not a key that can go in a header`);
      }
      keys.push(key);
    });
    return keys;
  } catch (error) {
    for (const key of keys) key.fill(0);
    throw error;
  } finally {
    privateKey.fill(0);
  }
}
