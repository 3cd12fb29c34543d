/**
 * Once per `npm test`: Google's official Firestore emulator, when this machine has it (the
 * Debian package google-cloud-cli-firestore-emulator; runs offline, with real transactions), so
 * that the isolation cases of the store contract and the races run on Firestore too. They are
 * registered when FIRESTORE_EMULATOR_HOST names an emulator; this sets it for the test workers.
 * Where the emulator is absent (or FIRESTORE_EMULATOR_HOST is already set) nothing starts, and
 * those cases run on SQLite only. The emulator runs in its own process group, ended whole at
 * teardown, so no Java process outlives the suite.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './helpers/free-port.js';

const START_TIMEOUT_MS = 90_000;

/** True when this machine's Cloud SDK has the Firestore emulator installed. */
function emulatorInstalled(): boolean {
  const which = spawnSync('sh', ['-c', 'command -v gcloud'], { encoding: 'utf8' });
  if (which.status !== 0) return false;
  const info = spawnSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' },
  });
  const root = info.stdout?.trim();
  return info.status === 0 && !!root && existsSync(join(root, 'platform/cloud-firestore-emulator'));
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env['FIRESTORE_EMULATOR_HOST'] !== undefined || !emulatorInstalled())
    return undefined;
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'gcloud',
    ['emulators', 'firestore', 'start', `--host-port=${host}`, '--quiet'],
    {
      env: { ...process.env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async () => {
    if (gone) return;
    try {
      process.kill(-child.pid!, 'SIGKILL'); // gcloud, its shell script and the JVM
    } catch {
      child.kill('SIGKILL');
    }
    await exited;
  };
  // Readiness is a condition (the emulator answers "Ok" on /), polled; not a sleep.
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await answers(`http://${host}/`))) {
    if (gone || Date.now() > deadline) {
      await stop();
      process.stderr.write(
        `the official Firestore emulator did not start; its cases run on SQLite only\n${output.slice(-2000)}\n`,
      );
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  process.env['FIRESTORE_EMULATOR_HOST'] = host;
  return stop;
}
