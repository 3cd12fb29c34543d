/**
 * A run's directory, as `run spawn` and `auth exchange` write it (new-run-dir.ts) and `run
 * spawn --parent-dir`, `run exec` and `run token` read it: `run.json` (what the service said
 * about the run, and its URL), `run.key` (its private Ed25519 seed, 0600) and `run.token` (the
 * run token the spawn answered with, a JWT, 0600). Requests made as the run are signed with
 * that key.
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ed25519PrivateKeyObject,
  RUN_FILES,
  RUN_ID_PATTERN,
  signRequest,
  type RunView,
  CREDENTIAL_HEADERS,
} from '@agentpack-identity/protocol';
import { CliError, nowMs, type CliIo } from './io.js';
import { readRawKeyFile } from './private-files.js';
import { post, REQUEST_TIMEOUT_MS, serviceUrl } from './service.js';

const MAX_RUN_JSON_BYTES = 64 * 1024;

/**
 * The run token's file in a run directory, beside `RUN_FILES.key` and `RUN_FILES.info`: a
 * bearer credential for whoever it is shown to (its audience), so 0600 like the key.
 */
export const RUN_TOKEN_FILE = 'run.token';

/** `run.json`: what `run spawn` learnt about the run, and where its service is. */
export interface RunInfo extends RunView {
  /** The service's base URL the run was spawned at. */
  url: string;
}

/** A run directory, read: its info and its private key, ready to sign. */
export interface RunDir {
  info: RunInfo;
  key: KeyObject;
}

export const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((v) => typeof v === 'string');

/** The headers of a request made as the run: its id and the signature by its key. */
export function runHeaders(
  run: RunDir,
  path: string,
  body: string,
  io: CliIo,
): Record<string, string> {
  return {
    [CREDENTIAL_HEADERS.run]: run.info.run_id,
    ...signRequest({ method: 'POST', path, body, signingSeed: run.key, nowMs: nowMs(io) }),
  };
}

/** POSTs `body` (a JSON text) to the route `path` as the run. */
export function postAsRun(run: RunDir, path: string, body: string, failure: string, io: CliIo) {
  return post(
    `${run.info.url}${path}`,
    runHeaders(run, path, body, io),
    body,
    failure,
    REQUEST_TIMEOUT_MS,
  );
}

/** Reads and checks a run directory written by `run spawn`. Never echoes a file. */
export function readRunDir(dir: string, option: string): RunDir {
  const infoFile = join(dir, RUN_FILES.info);
  let text: string;
  try {
    const stat = statSync(infoFile);
    if (!stat.isFile()) throw new CliError(`${infoFile} is not a file`);
    if (stat.size > MAX_RUN_JSON_BYTES) throw new CliError(`${infoFile} is too large`);
    text = readFileSync(infoFile, 'utf8');
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CliError(`${option}: ${infoFile} is missing (a directory written by "run spawn")`);
    }
    throw new CliError(`cannot read ${infoFile} (${code ?? 'error'})`);
  }
  let info: Partial<Record<keyof RunInfo, unknown>>;
  try {
    info = JSON.parse(text) as typeof info;
  } catch {
    throw new CliError(`${infoFile} is not JSON`);
  }
  if (
    typeof info !== 'object' ||
    info === null ||
    typeof info.run_id !== 'string' ||
    !RUN_ID_PATTERN.test(info.run_id) ||
    typeof info.url !== 'string' ||
    typeof info.expires_at !== 'string' ||
    !isStringArray(info.lineage)
  ) {
    throw new CliError(`${infoFile} is not a run's run.json`);
  }
  const url = serviceUrl(info.url, `${infoFile} "url"`);
  const seed = readRawKeyFile(dir, RUN_FILES.key);
  try {
    return { info: { ...(info as RunInfo), url }, key: ed25519PrivateKeyObject(seed) };
  } finally {
    seed.fill(0);
  }
}

/** The run of a 201 answer to `/runs/spawn`, checked. */
export function spawnedRun(answer: Record<string, unknown>, url: string): RunInfo {
  const { run_id, agent_id, parent_run_id, root_run_id, lineage, scope, created_at, expires_at } =
    answer;
  if (
    typeof run_id !== 'string' ||
    !RUN_ID_PATTERN.test(run_id) ||
    typeof agent_id !== 'string' ||
    (parent_run_id !== null && typeof parent_run_id !== 'string') ||
    typeof root_run_id !== 'string' ||
    !isStringArray(lineage) ||
    lineage[lineage.length - 1] !== run_id ||
    !isStringArray(scope) ||
    typeof created_at !== 'string' ||
    typeof expires_at !== 'string'
  ) {
    throw new CliError('spawn failed: the answer is not a run');
  }
  return {
    run_id,
    agent_id,
    parent_run_id,
    root_run_id,
    lineage,
    scope,
    created_at,
    expires_at,
    url,
  };
}
