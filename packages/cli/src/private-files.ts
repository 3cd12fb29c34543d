/**
 * The CLI's private files: keys, device keys and run keys live in files only their owner can
 * read (0600) in directories only their owner can enter (0700), are never written over an
 * existing file or a planted symlink, and are refused, not used, when others can read them
 * (as ssh does for its keys). Short-lived tokens a reader re-reads are the one thing replaced
 * in place, whole, by a rename (`replacePrivateFile`). Messages name files, never their content.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { decodeRawKey } from '@agentpack-identity/protocol';
import { CliError } from './io.js';

const errno = (error: unknown) => (error as NodeJS.ErrnoException).code ?? 'error';

/** Removes `file`, quietly: it runs while another failure, the one reported, is on its way out. */
function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // gone already; else the failure being thrown says enough
  }
}

/**
 * Creates `file` (mode exactly 0600) with `content`, never over an existing file or symlink
 * (EEXIST). Whole or not at all: when writing fails partway (ENOSPC, EFBIG, EIO) or the mode
 * cannot be set, the file it created is removed before the error (from node:fs) is thrown.
 */
function createPrivateFile(file: string, content: string): void {
  // `wx`: O_CREAT|O_EXCL, so an existing file (or a planted symlink) is never overwritten.
  const fd = openSync(file, 'wx', 0o600);
  // From here the file is ours: any failure removes it.
  let failure: unknown = null;
  try {
    writeFileSync(fd, content);
    fchmodSync(fd, 0o600); // the umask may have taken bits away; make it exactly 0600
  } catch (error) {
    failure = error;
  }
  try {
    closeSync(fd);
  } catch (error) {
    failure ??= error;
  }
  if (failure !== null) {
    unlinkQuietly(file);
    throw failure;
  }
}

/** Writes a new private file (mode exactly 0600), never over an existing file or symlink. */
export function writePrivateFile(file: string, content: string): void {
  try {
    createPrivateFile(file, content);
  } catch (error) {
    if (errno(error) === 'EEXIST') {
      throw new CliError(`${file} already exists: refusing to overwrite it`);
    }
    throw new CliError(`cannot write ${file} (${errno(error)})`);
  }
}

/**
 * Writes `file` (mode exactly 0600) whole or not at all, replacing what was there: a new file
 * beside it, then a rename over it. For what is refreshed in place (a short-lived token a
 * reader re-reads); keys keep {@link writePrivateFile}, which never replaces anything. A
 * planted symlink at `file` is replaced, never followed; a directory there is refused. On any
 * failure, the temporary file is removed.
 */
export function replacePrivateFile(file: string, content: string): void {
  try {
    if (lstatSync(file).isDirectory()) throw new CliError(`${file} is a directory`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (errno(error) !== 'ENOENT') throw new CliError(`cannot check ${file} (${errno(error)})`);
  }
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    createPrivateFile(temporary, content); // on failure, it is gone already
  } catch (error) {
    throw new CliError(`cannot write ${file} (${errno(error)})`);
  }
  try {
    renameSync(temporary, file);
  } catch (error) {
    unlinkQuietly(temporary);
    throw new CliError(`cannot write ${file} (${errno(error)})`);
  }
}

/**
 * Empties the directory `dir`: removes every entry in it (files, temporary files, whatever a
 * program made there), and leaves the directory. Returns what could not be removed, each as
 * `NAME (CODE)` (names, never content): empty when nothing is left (or `dir` is gone).
 */
export function emptyPrivateDir(dir: string): string[] {
  try {
    // A program may have taken the directory's permissions away: give them back first.
    chmodSync(dir, 0o700);
  } catch {
    // gone already, or not ours to change: reading it says which
  }
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    return errno(error) === 'ENOENT' ? [] : [`${dir} (${errno(error)})`];
  }
  const failed: string[] = [];
  for (const name of names) {
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
    } catch (error) {
      failed.push(`${name} (${errno(error)})`);
    }
  }
  return failed;
}

/** Refuses when any of `files` exists (a symlink too), before anything is written. */
export function refuseExisting(files: readonly string[], hint: string): void {
  for (const file of files) {
    let exists = true;
    try {
      lstatSync(file);
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw new CliError(`cannot check ${file} (${errno(error)})`);
      exists = false;
    }
    if (exists) throw new CliError(`${file} already exists: ${hint}`);
  }
}

/**
 * Reads a small private file: a regular file, at most `maxBytes`, that nobody else can read.
 * Returns its text without surrounding whitespace.
 */
export function readPrivateFile(file: string, maxBytes = 4096): string {
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new CliError(`${file} is not a file`);
    if (stat.size > maxBytes) throw new CliError(`${file} is too large`);
    const mode = stat.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new CliError(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
    }
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file} (${errno(error)})`);
  }
}

/** A raw 32-byte private key file (`sealing.key`, `signing.key`, `run.key`). Never echoes it. */
export function readRawKeyFile(dir: string, name: string): Uint8Array {
  const file = join(dir, name);
  const raw = decodeRawKey(readPrivateFile(file));
  if (raw === null) throw new CliError(`${file} is not a raw 32-byte key in base64url`);
  return raw;
}

/** Creates `dir` (exactly 0700 when created here) or accepts an existing directory. */
export function makePrivateDir(dir: string): void {
  try {
    const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (created !== undefined) chmodSync(dir, 0o700); // exactly 0700, whatever the umask
    if (!statSync(dir).isDirectory()) throw new CliError(`${dir} is not a directory`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot create ${dir} (${errno(error)})`);
  }
}

/** True when `file` is a regular file (following symlinks). */
export function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
