/** Key files must be the owner's alone. */
import { statSync } from 'node:fs';

/**
 * Throws when `file` can be read or written by group or others: a key in such a file may
 * already be someone else's. The message names the file and the fix, never the content.
 */
export function assertPrivateFile(file: string): void {
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  }
}
