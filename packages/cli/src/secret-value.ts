/**
 * Where a secret value comes from, and how a sealed one is opened. A value is read from stdin
 * (typed without echo on a terminal) or from a file — never from the command line, where other
 * users can read it (`ps`, /proc/PID/cmdline) and the shell's history keeps it. It is never
 * printed or put in a message.
 */
import { readFileSync, statSync } from 'node:fs';
import {
  DEVICE_FILES,
  decodeBase64Url,
  openSealed,
  sealingPublicKeyOf,
} from '@agentpack-identity/protocol';
import { CliError, usage, type CliIo } from './io.js';
import { readRawKeyFile } from './private-files.js';

/** The most a value may be (the service's limit is 32 KiB; the body's 64 KiB). */
export const MAX_VALUE_BYTES = 64 * 1024;

export const REFUSED_VALUE = {
  value:
    'a value in the command line is visible to other users (ps) and kept in shell history; pipe it on stdin or use --value-file FILE',
} as const;

export const VALUE_HELP = `  --value-file FILE      read the value from FILE ("-": stdin). Default: stdin (typed
                         without echo on a terminal). Never from the command line: --value
                         is refused.
  --keep-newline         keep one final newline of the value (by default one "\\n" or "\\r\\n"
                         at its end is dropped, as "echo" and editors add it)`;

function readValueFile(file: string): Buffer {
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new CliError(`--value-file: ${file} is not a file`);
    if (stat.size > MAX_VALUE_BYTES) throw new CliError(`--value-file: ${file} is too large`);
    return readFileSync(file);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(
      `--value-file: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/** The secret value of a `put`: from `--value-file`, else stdin; UTF-8, not empty. */
export async function readSecretValue(
  opts: { 'value-file'?: string; 'keep-newline'?: true },
  io: CliIo,
  name: string,
): Promise<string> {
  const file = opts['value-file'];
  let bytes: Buffer;
  if (file !== undefined && file !== '-') {
    bytes = readValueFile(file);
  } else if (io.tty?.stdin === true) {
    if (io.readHidden === undefined) throw usage('pipe the value on stdin or use --value-file');
    bytes = Buffer.from(await io.readHidden(`value of ${name} (not echoed): `), 'utf8');
  } else {
    if (io.readStdin === undefined) throw usage('no stdin: use --value-file FILE');
    bytes = await io.readStdin(MAX_VALUE_BYTES);
  }
  let value: string;
  try {
    value = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CliError('the value is not UTF-8 text');
  } finally {
    bytes.fill(0);
  }
  if (opts['keep-newline'] !== true) value = value.replace(/\r?\n$/, '');
  if (value === '') throw new CliError('the value is empty (nothing on stdin?)');
  return value;
}

/** Opens the `sealed` member of an answer with the enrolled device's sealing key in `dir`. */
export function openSealedValue(sealed: unknown, dir: string): string {
  const bytes = decodeBase64Url(sealed);
  if (bytes === null) throw new CliError('the answer’s "sealed" is not base64url');
  const privateKey = readRawKeyFile(dir, DEVICE_FILES.sealingKey);
  let opened: Uint8Array | null;
  try {
    opened = openSealed(bytes, sealingPublicKeyOf(privateKey), privateKey);
  } finally {
    privateKey.fill(0);
  }
  if (opened === null) {
    throw new CliError('cannot open the sealed value: not sealed to this device, or altered');
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(opened);
  } catch {
    throw new CliError('the sealed value is not UTF-8 text');
  } finally {
    opened.fill(0);
  }
}
