/**
 * The README's first-five-minutes script, executed exactly as printed: the fenced `sh` block
 * after `<!-- first-five-minutes -->` is run by bash (`-euo pipefail`, as a person saving it to
 * a file would) from the repository root against `npm start`'s entry, started as a process on
 * a free port over a fresh data dir. It must exit 0 and print the demo secret twice: once read
 * with the device key, once with the capability token. A second case runs a copy with one route
 * renamed and proves the script stops there instead of carrying on: so a README edit that
 * breaks the script breaks this test.
 */
import { readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startChild, type Child } from './helpers/child.js';
import { killLiveProcesses, runProcess } from './helpers/cli-process.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'functions/lib/local/main.js');
const MARKER = '<!-- first-five-minutes -->';
const DEMO_VALUE = 'sk-demo-123';
const SCRIPT_TIMEOUT_MS = 60_000;

/** The fenced `sh` block that follows the marker (only blank lines may sit between them). */
function firstFiveMinutesScript(readme: string): string {
  const at = readme.indexOf(MARKER);
  if (at === -1) throw new Error(`README.md has no ${MARKER} line`);
  if (readme.indexOf(MARKER, at + MARKER.length) !== -1) {
    throw new Error(`README.md has more than one ${MARKER} line`);
  }
  const m = /^\s*\n```sh\n([\s\S]*?)\n```[ \t]*(?:\n|$)/.exec(readme.slice(at + MARKER.length));
  if (m === null) throw new Error(`no \`\`\`sh block right after ${MARKER}`);
  return m[1]!;
}

const servers: Child[] = [];
const dirs: Array<{ remove(): void }> = [];
afterEach(killLiveProcesses);
afterEach(async () => {
  // By pid (Child.stop signals its own process), then wait for the exit.
  for (const s of servers.splice(0)) await s.stop('SIGTERM');
  for (const d of dirs.splice(0)) d.remove();
});

/** The environment without any AGENTPACK_* variable the caller's shell may carry. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AGENTPACK_')) env[k] = v;
  return env;
}

/** `npm start`'s entry on a free port over a fresh data dir; resolves with its URL. */
async function startServer(): Promise<{ url: string; dataDir: string }> {
  const tmp = tempDir('agentpack-readme-');
  dirs.push(tmp);
  const server = startChild(process.execPath, [main], {
    PATH: process.env['PATH'],
    AGENTPACK_DATA_DIR: tmp.dir,
    PORT: '0',
  });
  servers.push(server);
  const line = await server.waitFor(/listening on (http:\/\/[0-9.:]+)/);
  return { url: line.replace('listening on ', ''), dataDir: tmp.dir };
}

/**
 * Runs `script` with `bash -euo pipefail -c` from the repository root, the repository's
 * node_modules/.bin first on PATH. Its own process group, so a timeout ends npx and node too.
 */
function runScript(
  script: string,
  env: { url: string; dataDir: string },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: root,
    env: {
      ...cleanEnv(),
      PATH: [join(root, 'node_modules/.bin'), process.env['PATH'] ?? ''].join(delimiter),
      AGENTPACK_URL: env.url,
      AGENTPACK_DATA_DIR: env.dataDir,
      npm_config_update_notifier: 'false',
    },
    timeoutMs: SCRIPT_TIMEOUT_MS,
  });
}

function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

describe('README: first five minutes', () => {
  const script = firstFiveMinutesScript(readFileSync(join(root, 'README.md'), 'utf8'));

  it('runs as printed: creates an agent, a device key and a secret, reads it with the key and with a token', async () => {
    expect(script).toContain(DEMO_VALUE);
    const server = await startServer();
    const run = await runScript(script, server);
    expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
    // Once read with the device key, once with the capability token.
    expect(occurrences(run.stdout, DEMO_VALUE), run.stdout).toBe(2);
    expect(run.stdout).toContain('agent: agent-');
    // Never a key on the terminal: the bridge key stays in its file.
    const bridge = readFileSync(join(server.dataDir, 'bridge-key'), 'utf8').trim();
    expect(run.stdout + run.stderr).not.toContain(bridge);
  });

  it('stops at the first refused request (a copy with a renamed route fails and reads nothing)', async () => {
    expect(script).toContain('/secrets/get"');
    const broken = script.replaceAll('/secrets/get"', '/secrets/got"');
    const server = await startServer();
    const run = await runScript(broken, server);
    expect(run.code).not.toBe(0);
    expect(run.stdout).not.toContain(DEMO_VALUE);
    expect(run.stdout).not.toContain('read with the token');
  });
});
