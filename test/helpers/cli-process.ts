/**
 * The CLI as a child process, the way people run it: `node packages/cli/bin/agentpack-identity.js`
 * with a small explicit environment. Every run has a deadline, and every process started here
 * is remembered until it exits: {@link killLiveProcesses} (in each suite's `afterEach`) ends
 * whatever is left — the CLI and anything it started, as one process group — so a failed or
 * timed-out test never leaves a process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The CLI's launcher, as npm links it into node_modules/.bin. */
export const CLI_BIN = join(root, 'packages/cli/bin/agentpack-identity.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();

/** Remembers `child` until it exits; started in its own process group (`detached`). */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGKILLs every process group started here that is still running, and waits for each. */
export async function killLiveProcesses(): Promise<void> {
  const waits = [...live].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        try {
          process.kill(-child.pid!, 'SIGKILL'); // the group: the CLI and its command
        } catch {
          child.kill('SIGKILL');
        }
      }),
  );
  await Promise.all(waits);
}

/**
 * Runs `command` with `args` in its own process group, with exactly the environment `env`, and
 * resolves when it exits. Rejects, after killing the group, when it outlives `timeoutMs`.
 */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<CliRun> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(command, [...args], {
        env: options.env,
        cwd: options.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      void killLiveProcesses();
      reject(
        new Error(`${command} ran over ${timeoutMs} ms: ${args.join(' ')}\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `script` (default: the CLI) with `args` and the environment `env` (PATH is added). */
export function runNode(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  options: { script?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  return runProcess(process.execPath, [options.script ?? CLI_BIN, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}
