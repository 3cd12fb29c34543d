/**
 * `@agentpack-identity/client/node`: credentials from the files the CLI writes on a device or a
 * worker host (Node only: node:fs). Files readable by group or others are refused, as the CLI
 * refuses them; nothing read is ever echoed.
 *
 * - `device enroll --out DIR` → {@link readEnrolledDevice}(DIR)
 * - `run spawn --out DIR` / `run exec` (`$AGENTPACK_RUN_DIR`) → {@link readRunDir}(DIR)
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DEVICE_FILES, EXEC_ENV, RUN_FILES, RUN_ID_PATTERN } from '@agentpack-identity/protocol';
import type { EnrolledDeviceCredential, RunCredential } from './credentials.js';
import { keyBytes } from './crypto/bytes.js';

function readPrivate(file: string, maxBytes = 64 * 1024): string {
  const stat = statSync(file);
  if (!stat.isFile()) throw new Error(`${file} is not a file`);
  if (stat.size > maxBytes) throw new Error(`${file} is too large`);
  if ((stat.mode & 0o077) !== 0) {
    throw new Error(
      `${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`,
    );
  }
  return readFileSync(file, 'utf8').trim();
}

function rawKey(dir: string, name: string): Uint8Array {
  const file = join(dir, name);
  try {
    return keyBytes(readPrivate(file), 32, file);
  } catch (error) {
    if (error instanceof TypeError)
      throw new Error(`${file} is not a raw 32-byte key in base64url`);
    throw error;
  }
}

/** The credential of an enrolled device directory (`device-key`, `signing.key`, `sealing.key`). */
export function readEnrolledDevice(dir: string): EnrolledDeviceCredential {
  return {
    kind: 'enrolled',
    deviceKey: readPrivate(join(dir, DEVICE_FILES.deviceKey)),
    signingSeed: rawKey(dir, DEVICE_FILES.signingKey),
    sealingKey: rawKey(dir, DEVICE_FILES.sealingKey),
  };
}

/** A run directory: the run's credential (from `run.key`), its id and the service URL (`run.json`). */
export function readRunDir(dir: string | undefined = process.env[EXEC_ENV.runDir]): {
  credential: RunCredential;
  url: string;
  runId: string;
  expiresAt: string | undefined;
} {
  if (dir === undefined || dir === '') {
    throw new Error(`no run directory: pass one, or run under \`run exec\` (${EXEC_ENV.runDir})`);
  }
  const file = join(dir, RUN_FILES.info);
  const text = readFileSync(file, 'utf8');
  let info: { run_id?: unknown; url?: unknown; expires_at?: unknown };
  try {
    info = JSON.parse(text) as typeof info;
  } catch {
    throw new Error(`${file} is not JSON`);
  }
  if (
    typeof info.run_id !== 'string' ||
    !RUN_ID_PATTERN.test(info.run_id) ||
    typeof info.url !== 'string'
  ) {
    throw new Error(`${file} is not a run's run.json`);
  }
  return {
    credential: { kind: 'run', runId: info.run_id, key: rawKey(dir, RUN_FILES.key) },
    url: info.url,
    runId: info.run_id,
    expiresAt: typeof info.expires_at === 'string' ? info.expires_at : undefined,
  };
}
