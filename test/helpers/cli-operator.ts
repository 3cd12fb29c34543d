/**
 * The operator CLI as a process with a stdin (a secret value piped in, as operators do), a
 * private profile file and bridge-key file in a temporary home, and `startCli` for commands
 * that run until interrupted (`audit tail`). Every process is tracked by cli-process.ts, so
 * `killLiveProcesses` in `afterEach` ends whatever a failed test left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN, track, type CliRun } from './cli-process.js';

/** Runs the CLI with `args`, exactly `env` (plus PATH), and `input` on stdin (else empty). */
export function runCli(
  args: readonly string[],
  env: Record<string, string | undefined>,
  options: { input?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(process.execPath, [CLI_BIN, ...args], {
        env: { PATH: process.env['PATH'] ?? '', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin!.on('error', () => {}); // a command that exits before reading stdin
    child.stdin!.end(options.input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI ran over ${timeoutMs} ms: ${args.join(' ')}\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A CLI process left running: its output so far, a wait for a pattern, and its exit. */
export interface LiveCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function startCli(
  args: readonly string[],
  env: Record<string, string | undefined>,
): LiveCli {
  const child = track(
    spawn(process.execPath, [CLI_BIN, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    }),
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(pattern, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (Date.now() > end) throw new Error(`no ${pattern} in:\n${out}\n${err}`);
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    exited,
  };
}

/**
 * A temporary operator home: `config` (the profile file's path, via AGENTPACK_CONFIG, not yet
 * written) and `bridgeKeyFile` (the key, 0600). `env()` is the environment of a CLI run there.
 */
export function operatorHome(dir: string, bridgeKey: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const bridgeKeyFile = join(dir, 'bridge-key');
  writeFileSync(bridgeKeyFile, `${bridgeKey}\n`, { mode: 0o600 });
  chmodSync(bridgeKeyFile, 0o600);
  const config = join(dir, 'conf', 'agentpack-identity', 'config.json');
  return {
    dir,
    config,
    bridgeKeyFile,
    env: (extra: Record<string, string> = {}) => ({
      HOME: dir,
      AGENTPACK_CONFIG: config,
      ...extra,
    }),
  };
}
