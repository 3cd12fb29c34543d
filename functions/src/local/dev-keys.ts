/**
 * Development keys generated into the data dir on first start, so `npm start` works on a fresh
 * clone. Each file is created with mode 0600 and never overwritten; the key itself is never
 * printed, only the file's path.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEV_BRIDGE_KEY_FILE = 'bridge-key';

/**
 * Returns the dev bridge key from `<dataDir>/bridge-key`, creating it (256 random bits) when
 * absent. Refuses a file that others can read.
 */
export function ensureDevBridgeKey(dataDir: string): {
  key: string;
  file: string;
  created: boolean;
} {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DEV_BRIDGE_KEY_FILE);
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new Error(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
    }
    return { key: readFileSync(file, 'utf8').trim(), file, created: false };
  }
  const key = `apbk_${randomBytes(32).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { key, file, created: true };
}
