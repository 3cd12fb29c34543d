/**
 * Making a run's directory, the one way `run spawn` and `auth exchange` both do it: the run's
 * Ed25519 key is generated here (a fresh one for every run, so two runs never share a key) and
 * written before the call, only its public half is sent, and what the service answers becomes
 * the directory's other files — the run token (when the answer has one), then `run.json`,
 * which is written last: a directory with a `run.json` is a complete one.
 *
 * Policy: a run is never live on the service while its key exists only in memory (the key file
 * comes first), and a run whose files cannot all be written is completed again at once rather
 * than left live with nobody able to use it.
 */
import type { KeyObject } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  ed25519PrivateKeyObject,
  encodeRawKey,
  generateDeviceKeys,
  RUN_FILES,
} from '@agentpack-identity/protocol';
import { CliError, type CliIo } from './io.js';
import { makePrivateDir, refuseExisting, writePrivateFile } from './private-files.js';
import { postAsRun, RUN_TOKEN_FILE, spawnedRun, type RunInfo } from './run-dir.js';
import { answerObject } from './service.js';

/** A compact JWS: three base64url segments (what a run token looks like). */
const JWT_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The files of a run directory just written. */
export interface NewRunDir {
  info: RunInfo;
  keyFile: string;
  infoFile: string;
  /** The run token's file, or null when the service's answer had no token (before 0.2). */
  tokenFile: string | null;
}

/** The answer's run token: absent (an older service) or a compact JWS; anything else refused. */
function tokenOf(answer: Record<string, unknown>, failure: string): string | null {
  const token = answer['token'];
  if (token === undefined) return null;
  if (typeof token !== 'string' || token.length > 16_384 || !JWT_PATTERN.test(token)) {
    throw new CliError(`${failure}: the answer's token is not a JWT`);
  }
  return token;
}

/**
 * Makes the run directory `out` (0700 if it is new; refused when it holds a run's files
 * already): generates the run key, writes it, calls `send` with the public half (the spawn or
 * the exchange, answering 201 with the run), then writes the run token and `run.json`.
 * `url` is the service's base URL, kept in `run.json`. On any failure the key file is removed
 * and, if the run exists, it is completed.
 */
export async function newRunDir(
  out: string,
  url: string,
  failure: string,
  send: (publicKey: string) => Promise<{ status: number; text: string }>,
  io: CliIo,
): Promise<NewRunDir> {
  makePrivateDir(out);
  const keyFile = join(out, RUN_FILES.key);
  const infoFile = join(out, RUN_FILES.info);
  const tokenFile = join(out, RUN_TOKEN_FILE);
  refuseExisting(
    [keyFile, infoFile, tokenFile],
    'refusing to overwrite a run’s files (use a new --out DIR)',
  );

  // A fresh key for every run, made here: the private half never leaves this machine.
  const keys = generateDeviceKeys();
  keys.sealing.privateKey.fill(0);
  const publicKey = encodeRawKey(keys.signing.publicKey);
  let runKey: KeyObject;
  try {
    // Written first: a run is never live on the service while its key exists only in memory.
    writePrivateFile(keyFile, `${encodeRawKey(keys.signing.privateKey)}\n`);
    runKey = ed25519PrivateKeyObject(keys.signing.privateKey);
  } finally {
    keys.signing.privateKey.fill(0);
  }

  let info: RunInfo;
  let token: string | null;
  try {
    const res = await send(publicKey);
    const answer = answerObject(res.status, res.text, failure, (s) => s === 201);
    info = spawnedRun(answer, url);
    token = tokenOf(answer, failure);
  } catch (error) {
    // No run (or none we can use), so no key: take the file away again.
    try {
      unlinkSync(keyFile);
    } catch {
      // already gone
    }
    throw error;
  }
  let tokenWritten = false;
  try {
    if (token !== null) {
      writePrivateFile(tokenFile, `${token}\n`);
      tokenWritten = true;
    }
    writePrivateFile(infoFile, `${JSON.stringify(info, null, 2)}\n`);
  } catch (error) {
    // The token verifies offline until it expires, whatever becomes of the run: not left behind.
    if (tokenWritten) {
      try {
        unlinkSync(tokenFile);
      } catch {
        // already gone
      }
    }
    // Without run.json nobody can use the run: end it rather than leave it live.
    const ended = await postAsRun(
      { info, key: runKey },
      '/runs/complete',
      '{}',
      'completing the run failed',
      io,
    ).then(
      (res) => res.status === 200,
      () => false,
    );
    const message = (error as Error).message;
    throw new CliError(
      ended
        ? `${message}; run ${info.run_id} was completed again`
        : `${message}; run ${info.run_id} could not be completed: revoke it`,
    );
  }
  return { info, keyFile, infoFile, tokenFile: token === null ? null : tokenFile };
}

/** The line on stderr that says where a new run's files are (never what they hold). */
export function filesWritten(dir: NewRunDir): string {
  const token = dir.tokenFile === null ? '' : `, run token to ${dir.tokenFile}`;
  return `run key written to ${dir.keyFile} (mode 0600)${token}, run details to ${dir.infoFile}\n`;
}
