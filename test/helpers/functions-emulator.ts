/**
 * The real Firebase Functions emulator serving the built `functions/dist` (the deploy bundle):
 * `firebase emulators:exec --only functions --project demo-…` with firebase-tools from the root
 * devDependencies, never a global install. It runs offline: a `demo-` project needs no login, and
 * the CLI's network calls (update check, MOTD, the `npm show firebase-functions` SDK check) are
 * switched off or fail fast.
 *
 * The function gets its configuration the way the emulator documents it:
 * - secrets (`defineSecret`) from `functions/.secret.local` (the emulator reads it from the
 *   functions source dir only, at each worker start). It is written for the run and removed
 *   after; a marker line with our pid makes it a lock, so two runs in one tree take turns and a
 *   file left by a killed run is taken over;
 * - params (`defineString`) and plain variables from `.env.local` in a per-run temporary dir,
 *   named as the codebase's `configDir` in a temporary firebase.json (which also gives every
 *   emulator a free port and disables the UI). A `defineString` without a value makes the
 *   emulator prompt, and fail in a non-interactive run, so an empty value must be given.
 *
 * The CLI holds the emulators up while `emulator-hold.mjs` runs; the script exits when the pipe
 * on its stdin closes, which is how {@link FunctionsEmulator.stop} ends the run (and how it ends
 * if the test process dies). The CLI runs in its own process group, killed by its id as a last
 * resort.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './firestore-emulator.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const functionsDir = join(root, 'functions');
const firebaseBin = join(root, 'node_modules', '.bin', 'firebase');
const holdScript = join(dirname(fileURLToPath(import.meta.url)), 'emulator-hold.mjs');
/** Where the emulator looks for local secret values (only there). */
export const SECRET_LOCAL_FILE = join(functionsDir, '.secret.local');
const READY_LINE = /agentpack-e2e: emulators ready/;
const MARKER = '# agentpack-e2e functions emulator run, pid ';
const TEMP_PREFIX = 'agentpack-e2e-';

export interface FunctionsEmulatorOptions {
  /** A `demo-` project: no credentials, nothing real reached. */
  projectId: string;
  /** Values of the function's `defineSecret`s, for `functions/.secret.local`. */
  secrets: Record<string, string>;
  /** Params and plain environment variables of the function, for `.env.local`. */
  env: Record<string, string>;
  /** How long to wait for the emulators to come up; default 90 s. */
  startTimeoutMs?: number;
  /** How long to wait while another run in this tree holds `.secret.local`; default 120 s. */
  lockTimeoutMs?: number;
}

export interface FunctionsEmulator {
  /** The URL of an HTTPS function: `http://127.0.0.1:PORT/PROJECT/REGION/NAME`. */
  functionUrl(name: string, region?: string): string;
  /** Everything the CLI, the emulators and the function printed so far. */
  output(): string;
  /** Ends the run and cleans up (idempotent); resolves with the CLI's exit code. */
  stop(): Promise<number | null>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A dotenv line the emulator's parser reads back exactly (checked, not escaped). */
function dotenvLine(key: string, value: string): string {
  if (!/^[A-Z][A-Z0-9_]*$/.test(key)) throw new Error(`bad variable name ${key}`);
  if (/['\\\r\n]/.test(value)) throw new Error(`${key}: value has a quote, backslash or newline`);
  return value === '' ? `${key}=` : `${key}='${value}'`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes `functions/.secret.local` exclusively. Waits while another live run holds it, takes
 * over one left by a dead run, and refuses to touch one that is not ours. Returns the release.
 */
async function acquireSecretFile(body: string, timeoutMs: number): Promise<() => void> {
  const token = randomUUID();
  const content = `${MARKER}${process.pid} ${token}\n${body}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      writeFileSync(SECRET_LOCAL_FILE, content, { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let existing: string;
    try {
      existing = readFileSync(SECRET_LOCAL_FILE, 'utf8');
    } catch {
      continue; // removed meanwhile: try again
    }
    const owner = new RegExp(`^${MARKER}(\\d+) `).exec(existing);
    if (owner === null) {
      throw new Error(
        `${SECRET_LOCAL_FILE} exists and was not written by this test: move it aside to run the emulator test`,
      );
    }
    if (!pidAlive(Number(owner[1]))) {
      rmSync(SECRET_LOCAL_FILE, { force: true }); // left by a run that was killed
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`another emulator run (pid ${owner[1]}) still holds ${SECRET_LOCAL_FILE}`);
    }
    await sleep(250);
  }
  return () => {
    try {
      if (readFileSync(SECRET_LOCAL_FILE, 'utf8').includes(token)) rmSync(SECRET_LOCAL_FILE);
    } catch {
      // already gone
    }
  };
}

/** Removes the temporary dirs of runs that were killed before they could clean up. */
function sweepDeadRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    try {
      const pid = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
      if (Number.isSafeInteger(pid) && pid > 0 && !pidAlive(pid)) {
        rmSync(dir, { recursive: true, force: true });
      }
    } catch {
      // not ours, or not finished setting up: leave it
    }
  }
}

export async function startFunctionsEmulator(
  options: FunctionsEmulatorOptions,
): Promise<FunctionsEmulator> {
  const { projectId } = options;
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const lockTimeoutMs = options.lockTimeoutMs ?? 120_000;
  if (!projectId.startsWith('demo-')) throw new Error('use a demo- project: it needs no login');
  if (!existsSync(join(functionsDir, 'dist', 'index.js'))) {
    throw new Error('functions/dist is not built: run `npm run build` first (`npm test` does)');
  }
  if (!existsSync(firebaseBin)) {
    throw new Error('firebase-tools is not installed: run `npm ci` (it is a root devDependency)');
  }

  sweepDeadRuns();
  const dir = mkdtempSync(join(tmpdir(), TEMP_PREFIX));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  let releaseSecrets = () => {};
  let stopping: Promise<number | null> | undefined;
  let stop = async (): Promise<number | null> => {
    releaseSecrets();
    rmSync(dir, { recursive: true, force: true });
    return null;
  };

  try {
    const [functionsPort, hubPort, loggingPort, eventarcPort, tasksPort] = await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    );
    const listen = (port: number) => ({ host: '127.0.0.1', port });
    writeFileSync(
      join(dir, 'firebase.json'),
      JSON.stringify(
        {
          functions: [
            {
              // Relative to this file's dir, the project dir of the run.
              source: relative(dir, functionsDir),
              codebase: 'default',
              runtime: 'nodejs20',
              // The .env files are read from here instead of the source dir.
              configDir: '.',
            },
          ],
          emulators: {
            functions: listen(functionsPort!),
            hub: listen(hubPort!),
            logging: listen(loggingPort!),
            eventarc: listen(eventarcPort!),
            tasks: listen(tasksPort!),
            ui: { enabled: false },
            singleProjectMode: true,
          },
        },
        null,
        2,
      ),
    );
    const dotenv = (vars: Record<string, string>) =>
      Object.entries(vars)
        .map(([k, v]) => `${dotenvLine(k, v)}\n`)
        .join('');
    writeFileSync(join(dir, '.env.local'), dotenv(options.env), { mode: 0o600 });
    for (const sub of ['home', 'xdg', 'tmp']) mkdirSync(join(dir, sub));

    releaseSecrets = await acquireSecretFile(dotenv(options.secrets), lockTimeoutMs);

    const proc = spawn(
      process.execPath,
      [
        firebaseBin,
        'emulators:exec',
        '--only',
        'functions',
        '--project',
        projectId,
        '--config',
        join(dir, 'firebase.json'),
        '--non-interactive',
        `"${process.execPath}" "${holdScript}"`,
      ],
      {
        // The CLI writes firebase-debug.log into its working directory.
        cwd: dir,
        // A small, explicit environment: it reaches the function's runtime too (the CLI passes
        // its own environment on), so nothing of the test runner's leaks into the function.
        env: {
          PATH: process.env['PATH'],
          HOME: join(dir, 'home'),
          XDG_CONFIG_HOME: join(dir, 'xdg'), // the CLI's configstore
          TMPDIR: join(dir, 'tmp'), // the emulator's worker sockets
          CI: 'true', // no MOTD fetch
          FIREBASE_CLI_DISABLE_UPDATE_CHECK: 'true',
          NO_UPDATE_NOTIFIER: '1',
          npm_config_update_notifier: 'false',
          // The CLI asks npm for the latest firebase-functions (a blocking `npm show`, up to
          // 10 s when the registry is unreachable): offline, it fails at once.
          npm_config_offline: 'true',
          // The CLI (google-auth-library inside it) probes the cloud metadata server to learn
          // whether it runs on Google Cloud; this run never does, and makes no request off loopback.
          METADATA_SERVER_DETECTION: 'none',
          AGENTPACK_E2E_HOLD_MAX_MS: String(5 * 60_000),
        },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true, // its own process group, so the whole tree can be ended by its id
      },
    );
    let out = '';
    const waiters = new Set<() => void>();
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      for (const w of waiters) w();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.stdin!.on('error', () => {}); // EPIPE if the CLI is already gone
    const exited = new Promise<number | null>((resolve) => {
      proc.once('exit', (code) => resolve(code));
      proc.once('error', (error) => {
        out += `\nspawn failed: ${error.message}\n`;
        resolve(null);
      });
    });
    let done = false;
    void exited.then(() => {
      done = true;
      for (const w of waiters) w();
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (proc.pid !== undefined) process.kill(-proc.pid, signal);
      } catch {
        // the group is gone
      }
    };

    /** The CLI's exit code, or `undefined` if it is still running after `ms`. */
    const exitWithin = (ms: number) => Promise.race([exited, sleep(ms).then(() => undefined)]);
    const shutdown = async (): Promise<number | null> => {
      try {
        proc.stdin!.end(); // the hold script exits, the CLI shuts the emulators down
        let code = await exitWithin(30_000);
        if (code === undefined) {
          killGroup('SIGTERM');
          code = await exitWithin(10_000);
        }
        if (code === undefined) {
          killGroup('SIGKILL');
          code = await exited;
        }
        killGroup('SIGKILL'); // any worker the CLI left behind
        return code;
      } finally {
        releaseSecrets();
        rmSync(dir, { recursive: true, force: true });
      }
    };
    stop = () => (stopping ??= shutdown());

    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error('timed out')), startTimeoutMs);
      const check = () => {
        if (READY_LINE.test(out)) finish();
        else if (done) finish(new Error('the CLI exited'));
      };
      const finish = (error?: Error) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error === undefined) resolve();
        else
          reject(new Error(`functions emulator did not start: ${error.message}; output:\n${out}`));
      };
      waiters.add(check);
      check();
    });

    return {
      functionUrl: (name, region = 'us-central1') =>
        `http://127.0.0.1:${functionsPort}/${projectId}/${region}/${name}`,
      output: () => out,
      stop: () => stop(),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
