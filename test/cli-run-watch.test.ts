/**
 * `run exec --watch` with a real command (test/fixtures/watch-child.cjs) against the real
 * service over HTTP, through a loopback proxy the test can take down (no answer, or 503): a new
 * version replaces its file whole (a new inode, 0600, the new content) and the command gets
 * --reload-signal once per batch; a deleted or destroyed secret's file goes (and comes back with
 * a new version); every file goes while the service refuses the run its secrets (sealed
 * delivery required) and comes back after; a revoked run's (or a disabled agent's run's) files
 * go and the command gets SIGTERM; an unreachable service keeps the files, with one stderr line
 * per outage and one on recovery, until the run's expiry, and not a moment longer.
 *
 * The watch polls every AGENTPACK_WATCH_INTERVAL_MS (50 ms here). Tests synchronise on what
 * they can observe — a file's content, a line on stderr, the command's marker file, the
 * proxy's count of requests — with bounded waits for a condition, never a fixed sleep.
 * The end of a run is also tested unit by unit (`watchCommand` with fake timers, and a fault
 * injected into node:fs's rmSync), and the private writes under a file-size limit (EFBIG
 * partway). Needs `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  type PathLike,
  type RmOptions,
} from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunDir } from '../packages/cli/src/run-dir.js';
import { watchCommand } from '../packages/cli/src/secret-watch.js';
import { CLI_BIN, killLiveProcesses, runNode, runProcess, track } from './helpers/cli-process.js';
import { startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = join(root, 'test/fixtures/watch-child.cjs');
const INTERVAL_MS = '50';

// Whatever a failed or timed-out test left running ends here, by process group.
afterEach(killLiveProcesses);

/** Paths node:fs's rmSync fails on (EBUSY), for the unit tests of the end; else the real one. */
const rmFaults = vi.hoisted(() => new Set<string>());
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    rmSync(path: PathLike, options?: RmOptions) {
      if (rmFaults.has(String(path))) {
        throw Object.assign(new Error(`EBUSY: resource busy, rm '${String(path)}'`), {
          code: 'EBUSY',
        });
      }
      return fs.rmSync(path, options);
    },
  };
});

const V1 = 'sk-watch-first-Qm41\nline two ü';
const V2 = 'sk-watch-second-Zr88';
const V3 = 'sk-watch-third-Lp07';
const DB1 = 'db-watch-first-Kk30';
const DB2 = 'db-watch-second-Wn62';
const ALL_VALUES = [V1, V2, V3, DB1, DB2];
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const mode = (path: string) => statSync(path).mode & 0o777;
const REFS = [
  '--ref',
  'API=agentpack.secret://agent-a/api_key',
  '--ref',
  'DB=agentpack.secret://agent-a/db_pass',
];

/** Resolves when `check` gives something truthy; throws after `timeoutMs` (a bound, not a sync). */
async function until<T>(
  what: string,
  check: () => T | null | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A file's text, or null when it is not there. */
function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/**
 * A loopback HTTP proxy in front of the service, the run's URL: `up` forwards, `503` answers
 * 503 itself, `refuse` drops every connection (a network error), `hang` takes each
 * `/secrets/resolve` and never answers it (other requests go through), `swap` forwards a
 * `/secrets/resolve` and reverses the order of the answer's values. Counts the resolves.
 */
interface Proxy {
  url: string;
  mode: 'up' | '503' | 'refuse' | 'hang' | 'swap';
  /** `/secrets/resolve` requests, by what the proxy did with them. */
  resolves: {
    forwarded: number;
    unavailable: number;
    refused: number;
    hung: number;
    swapped: number;
  };
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<Proxy> {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  const proxy: Proxy = {
    url: '',
    mode: 'up',
    resolves: { forwarded: 0, unavailable: 0, refused: 0, hung: 0, swapped: 0 },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
  const server: Server = createServer((req, res) => {
    const isResolve = req.url === '/secrets/resolve';
    if (proxy.mode === 'refuse') {
      if (isResolve) proxy.resolves.refused += 1;
      req.socket.destroy();
      return;
    }
    if (proxy.mode === '503') {
      if (isResolve) proxy.resolves.unavailable += 1;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"unavailable","message":"down for a test"}}');
      return;
    }
    if (proxy.mode === 'hang' && isResolve) {
      proxy.resolves.hung += 1; // taken, never answered (close() destroys the socket)
      return;
    }
    const swap = proxy.mode === 'swap' && isResolve;
    const upstream = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (swap) {
          const chunks: Buffer[] = [];
          answer.on('data', (c: Buffer) => chunks.push(c));
          answer.once('end', () => {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            if (Array.isArray(body.values)) body.values.reverse();
            const text = JSON.stringify(body);
            const headers = {
              ...answer.headers,
              'content-length': String(Buffer.byteLength(text)),
            };
            res.writeHead(answer.statusCode ?? 502, headers);
            res.end(text);
            proxy.resolves.swapped += 1;
          });
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.once('end', () => {
          if (isResolve) proxy.resolves.forwarded += 1;
        });
      },
    );
    upstream.once('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

let svc: TestService;
let proxy: Proxy;
let tmp: { dir: string; remove(): void };
let execTmp: string;
let deviceKeyFile: string;
let device: Record<string, string>;
let n = 0;

/** Puts a secret value with agent-a's device key. */
async function put(name: string, value: string): Promise<number> {
  const res = await svc.post('/secrets/put', { name, value }, device);
  expect(res.status, res.text).toBe(200);
  return res.body.version;
}

/** A run of agent-a through the proxy (the CLI's own run spawn): its directory and run.json. */
async function spawnRun(ttl = 120): Promise<{ dir: string; info: any }> {
  const dir = join(tmp.dir, `run-${++n}`);
  const res = await runNode([
    'run',
    'spawn',
    '--url',
    proxy.url,
    '--device-key-file',
    deviceKeyFile,
    '--task',
    'watch',
    '--scope',
    'secrets/get:api_key,secrets/get:db_pass',
    '--ttl',
    String(ttl),
    '--out',
    dir,
  ]);
  expect(res.code, res.stderr).toBe(0);
  return { dir, info: JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) };
}

/** `run exec --watch` of the fixture, in its own process group; stdout and stderr kept. */
function startExec(runDir: string, options: string[]) {
  const marker = join(tmp.dir, `marker-${++n}`);
  writeFileSync(marker, '');
  const proc = track(
    spawn(
      process.execPath,
      [
        CLI_BIN,
        'run',
        'exec',
        '--run-dir',
        runDir,
        ...options,
        '--',
        process.execPath,
        FIXTURE,
        marker,
      ],
      {
        env: {
          PATH: process.env['PATH'] ?? '',
          TMPDIR: execTmp,
          AGENTPACK_WATCH_INTERVAL_MS: INTERVAL_MS,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    ),
  );
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('close', (code) => resolve(code)),
  );
  let code: number | null | undefined;
  void exited.then((c) => (code = c));
  return {
    proc,
    marker,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    /** The code, once it has exited. */
    code: () => code,
    /** The marker's lines. */
    lines: () => (read(marker) ?? '').split('\n').filter((l) => l !== ''),
    /** The secrets directory, once the command says it is ready. */
    ready: async () => (await until('the command to start', () => /ready (\S+)/.exec(stdout)))[1]!,
    stderrLines: (pattern: RegExp) => stderr.split('\n').filter((l) => pattern.test(l)),
    /** Resolves once stderr has `text` (its pipe may lag behind the files and the marker). */
    said: (text: string) => until(`${JSON.stringify(text)} on stderr`, () => stderr.includes(text)),
  };
}

/** The "hup" lines of the marker, as {NAME: sha256} maps. */
const hups = (lines: string[]) =>
  lines
    .filter((l) => l.startsWith('hup'))
    .map((l) =>
      Object.fromEntries(
        l
          .split(' ')
          .slice(1)
          .map((pair) => pair.split('=')),
      ),
    );

/** Neither the CLI's output nor the marker nor the service's log holds a value. */
function expectNoValues(exec: ReturnType<typeof startExec>) {
  for (const text of [exec.stdout(), exec.stderr(), read(exec.marker) ?? '', svc.logs.join('\n')]) {
    for (const value of ALL_VALUES) expect(text).not.toContain(value);
  }
}

beforeAll(() => {
  if (!existsSync(join(root, 'packages/cli/lib/secret-watch.js'))) {
    throw new Error('packages/cli/lib is not built: run npm run build before these tests');
  }
});
beforeEach(async () => {
  tmp = tempDir('agentpack-cli-watch-');
  execTmp = join(tmp.dir, 'tmp');
  mkdirSync(execTmp, { mode: 0o700 });
  svc = await startTestService();
  proxy = await startProxy(svc.url);
  expect(
    (await svc.post('/agents/create', { agent_id: 'agent-a', display_name: 'a' }, svc.bridge))
      .status,
  ).toBe(201);
  const issued = await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge);
  expect(issued.status).toBe(201);
  deviceKeyFile = join(tmp.dir, 'agent-a.device-key');
  writeFileSync(deviceKeyFile, `${issued.body.device_key}\n`, { mode: 0o600 });
  device = svc.device(issued.body.device_key);
  await put('api_key', V1);
  await put('db_pass', DB1);
});
afterEach(async () => {
  await killLiveProcesses();
  await proxy.close();
  await svc.close();
  tmp.remove();
});

describe('command line', () => {
  it('documents --watch and --reload-signal, and that they apply to the files only', async () => {
    const res = await runNode(['run', 'exec', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('[--watch [SECONDS] [--reload-signal SIG]]');
    expect(res.stdout).toContain('--watch applies to the secret files only');
    expect(res.stdout).toContain('a temporary file (mode 0600) in the same');
    expect(res.stdout).toContain('COMMAND is sent SIGTERM');
    const top = await runNode(['--help']);
    expect(top.stdout).toContain('[--watch [SECONDS]');
  });

  it.each([
    [['--watch', '4'], {}, /--watch must be a whole number from 5 to 3600/],
    [['--watch', '3601'], {}, /--watch must be a whole number from 5 to 3600/],
    [['--watch', 'soon'], {}, /--watch must be a whole number from 5 to 3600/],
    [['--watch=0'], {}, /--watch must be a whole number from 5 to 3600/],
    [['--watch', '30', '--watch'], {}, /--watch given more than once/],
    [['--reload-signal', 'SIGHUP'], {}, /--reload-signal goes with --watch/],
    [['--watch', '--reload-signal', 'SIGNOPE'], {}, /--reload-signal must be a signal name/],
    [['--watch'], { AGENTPACK_WATCH_INTERVAL_MS: '5' }, /AGENTPACK_WATCH_INTERVAL_MS must be/],
    // A signal that kills or stops the command is no reload signal.
    [['--watch', '--reload-signal', 'SIGKILL'], {}, /--reload-signal cannot be SIGKILL: /],
    [['--watch', '--reload-signal', 'stop'], {}, /--reload-signal cannot be SIGSTOP: /],
    [['--watch', '--reload-signal', 'SIGTSTP'], {}, /--reload-signal cannot be SIGTSTP: /],
    [['--watch', '--reload-signal', 'sigttin'], {}, /--reload-signal cannot be SIGTTIN: /],
    [['--watch', '--reload-signal', 'TTOU'], {}, /--reload-signal cannot be SIGTTOU: /],
  ])('%j %j exits 2 with one line, before anything is read', async (options, env, message) => {
    const res = await runNode(
      ['run', 'exec', '--run-dir', join(tmp.dir, 'none'), ...options, '--', 'true'],
      env,
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^agentpack-identity: [^\n]+\n$/);
    expect(res.stderr).toMatch(message);
  });

  it('takes --watch without a value (the default) before other options', async () => {
    const { dir } = await spawnRun();
    const res = await runNode(
      [
        'run',
        'exec',
        '--run-dir',
        dir,
        '--watch',
        ...REFS,
        '--reload-signal',
        'hup',
        '--',
        process.execPath,
        '-e',
        'process.exit(0)',
      ],
      { TMPDIR: execTmp },
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    expect(readdirSync(execTmp)).toEqual([]);
  });
});

describe('keeping the files current', () => {
  it("never gives the command run exec's test knob, AGENTPACK_WATCH_INTERVAL_MS", async () => {
    const { dir } = await spawnRun();
    const exec = startExec(dir, ['--watch', ...REFS]);
    await exec.ready();
    // run exec itself read it (it polls every 50 ms), the command did not get it.
    await until('polls at the test interval', () => proxy.resolves.forwarded >= 3);
    expect(exec.stdout()).toContain('watch-interval-env unseen\n');
    expect(exec.stdout()).not.toContain('watch-interval-env seen');
    exec.proc.kill('SIGTERM');
    expect(await exec.exited).toBe(143);
  });

  it('replaces a file whole on a new version (new inode, 0600) and signals the command', async () => {
    const { dir, info } = await spawnRun();
    const exec = startExec(dir, ['--watch', '--reload-signal', 'SIGHUP', ...REFS]);
    const secrets = await exec.ready();
    const api = join(secrets, 'API');
    expect(read(api)).toBe(V1);
    const before = statSync(api);
    expect(mode(secrets)).toBe(0o700);
    expect(mode(api)).toBe(0o600);

    const version = await put('api_key', V2);
    await until('API to hold the new version', () => read(api) === V2);
    const after = statSync(api);
    expect(after.ino).not.toBe(before.ino); // renamed over, not written in place
    expect(mode(api)).toBe(0o600);
    expect(readdirSync(secrets).sort()).toEqual(['API', 'DB']); // no temporary file left
    expect(read(join(secrets, 'DB'))).toBe(DB1);
    await until('the command to see it', () =>
      hups(exec.lines()).some((h) => h['API'] === sha256(V2)),
    );
    expect(hups(exec.lines())).toEqual([{ API: sha256(V2), DB: sha256(DB1) }]);
    await exec.said(`agentpack-identity: watch: API replaced (version ${version})\n`);

    // Unchanged secrets make no change: polls go by without another signal.
    const polls = proxy.resolves.forwarded;
    await until('more polls', () => proxy.resolves.forwarded >= polls + 3);
    expect(hups(exec.lines())).toHaveLength(1);
    expect(statSync(api).ino).toBe(after.ino);

    // The command ends by itself (SIGTERM passed on): files gone, run completed.
    exec.proc.kill('SIGTERM');
    expect(await exec.exited).toBe(143);
    expect(existsSync(secrets)).toBe(false);
    expect(readdirSync(execTmp)).toEqual([]);
    const status = await svc.request(`/.well-known/agentpack-agent-identity/${info.run_id}`, {
      method: 'GET',
    });
    expect(status.body.status).toBe('completed');
    expectNoValues(exec);
  });

  it('removes the file of a deleted or a destroyed secret, and writes it again on a new version', async () => {
    const { dir } = await spawnRun();
    const exec = startExec(dir, ['--watch', '--reload-signal', 'SIGHUP', ...REFS]);
    const secrets = await exec.ready();
    const api = join(secrets, 'API');
    const db = join(secrets, 'DB');

    expect((await svc.post('/secrets/delete', { name: 'api_key' }, device)).status).toBe(200);
    await until('API to go', () => !existsSync(api));
    await until('the command to see it', () => hups(exec.lines()).length === 1);
    expect(hups(exec.lines())[0]).toEqual({ DB: sha256(DB1) });
    await exec.said('agentpack-identity: watch: API removed (deleted)\n');
    expect(read(db)).toBe(DB1);

    expect(
      (await svc.post('/secrets/destroy', { name: 'db_pass', versions: [1] }, device)).status,
    ).toBe(200);
    await until('DB to go', () => !existsSync(db));
    await until('the command to see it', () => hups(exec.lines()).length === 2);
    expect(hups(exec.lines())[1]).toEqual({});
    await exec.said('agentpack-identity: watch: DB removed (destroyed)\n');
    expect(readdirSync(secrets)).toEqual([]);

    // Gone is not forgotten: a new version brings the file back.
    const version = await put('api_key', V3);
    await until('API to come back', () => read(api) === V3);
    expect(mode(api)).toBe(0o600);
    await until('the command to see it', () => hups(exec.lines()).length === 3);
    expect(hups(exec.lines())[2]).toEqual({ API: sha256(V3) });
    await exec.said(`agentpack-identity: watch: API written (version ${version})\n`);
    expect(exec.lines().some((l) => l.startsWith('terminated'))).toBe(false);
    expectNoValues(exec);
  });

  it('removes every file while the service refuses the run its secrets, and restores them', async () => {
    const { dir } = await spawnRun();
    const exec = startExec(dir, ['--watch', ...REFS]);
    const secrets = await exec.ready();
    const requireSealed = (value: boolean) =>
      svc.post('/settings/set', { key: 'secrets.require_sealed', value }, svc.bridge);
    // A run has no sealing key: with sealed delivery required, it may read nothing.
    expect((await requireSealed(true)).status).toBe(200);
    await until('the files to go', () => readdirSync(secrets).length === 0);
    await exec.said('watch: DB removed (refused)\n');
    expect(
      exec.stderrLines(
        /watch: the service refuses the run its secrets \(HTTP 403 permission_denied/,
      ),
    ).toHaveLength(1);
    expect(exec.code()).toBeUndefined(); // the command goes on: the run is not over
    const polls = proxy.resolves.forwarded;
    await until('more polls', () => proxy.resolves.forwarded >= polls + 3);
    expect(exec.stderrLines(/watch: the service refuses/)).toHaveLength(1);

    expect((await requireSealed(false)).status).toBe(200);
    await until('the files to come back', () => read(join(secrets, 'API')) === V1);
    await until('DB too', () => read(join(secrets, 'DB')) === DB1);
    expect(mode(join(secrets, 'API'))).toBe(0o600);
    await exec.said('watch: the service answers again: the secret files are current\n');
    expect(exec.code()).toBeUndefined();
    expectNoValues(exec);
  });
});

describe('the end of the run', () => {
  it.each([
    ['revoked', (runId: string) => svc.post('/runs/revoke', { run_id: runId }, svc.bridge)],
    [
      'ended by disabling its agent',
      () => svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge),
    ],
  ])('removes every file and sends SIGTERM when the run is %s', async (_, endIt) => {
    const { dir, info } = await spawnRun();
    const exec = startExec(dir, ['--watch', '--reload-signal', 'SIGHUP', ...REFS]);
    const secrets = await exec.ready();
    expect((await endIt(info.run_id)).status).toBe(200);
    expect(await exec.exited).toBe(143);
    // The files were gone before the command got SIGTERM (and no reload signal for that).
    expect(exec.lines()).toEqual(['terminated files=0']);
    expect(existsSync(secrets)).toBe(false);
    expect(readdirSync(execTmp)).toEqual([]);
    expect(exec.stderr()).toContain(
      `agentpack-identity: watch: run ${info.run_id} is revoked: the secret files are removed and the command is sent SIGTERM\n`,
    );
    expect(exec.stderr()).toContain(`run ${info.run_id} was not completed: it is already revoked`);
    expectNoValues(exec);
  });

  it('ends the command when its run is revoked, even with no secret files to watch', async () => {
    const { dir, info } = await spawnRun();
    const exec = startExec(dir, ['--watch']);
    await exec.ready();
    expect((await svc.post('/runs/revoke', { run_id: info.run_id }, svc.bridge)).status).toBe(200);
    expect(await exec.exited).toBe(143);
    expect(exec.lines()).toEqual(['terminated files=0']);
    expect(exec.stderr()).toContain(`watch: run ${info.run_id} is revoked`);
  });
});

describe('a service that cannot be reached', () => {
  it('keeps the files, says so once per outage and once on recovery, then catches up in one batch', async () => {
    const { dir, info } = await spawnRun();
    const exec = startExec(dir, ['--watch', '--reload-signal', 'SIGHUP', ...REFS]);
    const secrets = await exec.ready();
    const outage = /watch: cannot check the secrets: .*the secret files stay as they are/;

    proxy.mode = '503';
    await until('the outage line', () => exec.stderrLines(outage).length === 1);
    expect(exec.stderr()).toContain(`at most until the run expires at ${info.expires_at}`);
    expect(exec.stderr()).toContain('HTTP 503 unavailable');
    // New versions while it is down, and no answer at all for a while: still one line.
    await put('api_key', V2);
    await put('db_pass', DB2);
    const unavailable = proxy.resolves.unavailable;
    await until('more polls', () => proxy.resolves.unavailable >= unavailable + 3);
    proxy.mode = 'refuse';
    await until('polls with no answer', () => proxy.resolves.refused >= 3);
    expect(exec.stderrLines(outage)).toHaveLength(1);
    expect(read(join(secrets, 'API'))).toBe(V1);
    expect(read(join(secrets, 'DB'))).toBe(DB1);
    expect(exec.lines()).toEqual([]);

    proxy.mode = 'up';
    await until('the recovery line', () => /watch: the service answers again/.test(exec.stderr()));
    await until('both files current', () => read(join(secrets, 'API')) === V2);
    expect(read(join(secrets, 'DB'))).toBe(DB2);
    await until('the command to see it', () => hups(exec.lines()).length === 1);
    const polls = proxy.resolves.forwarded;
    await until('more polls', () => proxy.resolves.forwarded >= polls + 3);
    // Both changes came in one poll: one signal, which saw both.
    expect(hups(exec.lines())).toEqual([{ API: sha256(V2), DB: sha256(DB2) }]);
    expect(exec.stderrLines(/watch: the service answers again/)).toHaveLength(1);

    // A second outage is a second line.
    proxy.mode = 'refuse';
    const refused = proxy.resolves.refused;
    await until('the second outage line', () => exec.stderrLines(outage).length === 2);
    expect(proxy.resolves.refused).toBeGreaterThan(refused);
    expectNoValues(exec);
  });

  it('keeps the files until the run expires, then removes them and sends SIGTERM', async () => {
    const { dir, info } = await spawnRun(5);
    const expiresMs = Date.parse(info.expires_at);
    const exec = startExec(dir, ['--watch', '--reload-signal', 'SIGHUP', ...REFS]);
    const secrets = await exec.ready();
    proxy.mode = 'refuse';
    await until('the outage line', () =>
      /watch: cannot check the secrets: cannot reach/.test(exec.stderr()),
    );
    // The service is gone for good: the files stay as they are up to the run's expiry...
    expect(read(join(secrets, 'API'))).toBe(V1);
    await until('shortly before the expiry', () => Date.now() >= expiresMs - 300, 10_000);
    expect(read(join(secrets, 'API'))).toBe(V1);
    expect(read(join(secrets, 'DB'))).toBe(DB1);
    expect(exec.lines()).toEqual([]);
    // ...and not after it.
    expect(await exec.exited).toBe(143);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresMs);
    expect(exec.lines()).toEqual(['terminated files=0']);
    expect(existsSync(secrets)).toBe(false);
    expect(exec.stderr()).toContain(
      `agentpack-identity: watch: run ${info.run_id} expired at ${info.expires_at}: the secret files are removed and the command is sent SIGTERM\n`,
    );
    // It could not be completed (nobody answers), and it is over anyway: nothing to revoke.
    expect(exec.stderr()).toContain(`it expired at ${info.expires_at}\n`);
    expect(exec.stderr()).not.toContain('revoke it');
    expect(exec.stderrLines(/watch: cannot check the secrets/)).toHaveLength(1);
    expectNoValues(exec);
  });
});

describe('answers the watch cannot trust, and a service that never answers', () => {
  it("keeps the files when an answer's values are not those of the refs asked, and never writes one into another's file", async () => {
    const { dir } = await spawnRun();
    const exec = startExec(dir, ['--watch', '--reload-signal', 'SIGHUP', ...REFS]);
    const secrets = await exec.ready();
    const mismatch =
      /^agentpack-identity: watch: cannot check the secrets: the answer's value 0 is not that of API; the secret files stay as they are until the service answers/;

    proxy.mode = 'swap'; // API's value answered as DB's, and DB's as API's
    await until('the mismatch line', () => exec.stderrLines(mismatch).length === 1);
    const swapped = proxy.resolves.swapped;
    await until('more polls', () => proxy.resolves.swapped >= swapped + 3);
    expect(exec.stderrLines(mismatch)).toHaveLength(1);
    expect(read(join(secrets, 'API'))).toBe(V1);
    expect(read(join(secrets, 'DB'))).toBe(DB1);
    expect(readdirSync(secrets).sort()).toEqual(['API', 'DB']);
    expect(exec.lines()).toEqual([]); // nothing changed: no reload signal
    expect(exec.code()).toBeUndefined();

    proxy.mode = 'up';
    await exec.said('watch: the service answers again: the secret files are current\n');
    expect(read(join(secrets, 'API'))).toBe(V1);
    expect(read(join(secrets, 'DB'))).toBe(DB1);
    expect(exec.lines()).toEqual([]);
    expectNoValues(exec);
  });

  it('removes the files and sends SIGTERM within a second of the expiry while the service hangs', async () => {
    const { dir, info } = await spawnRun(4);
    const expiresMs = Date.parse(info.expires_at);
    const exec = startExec(dir, ['--watch', '--reload-signal', 'SIGHUP', ...REFS]);
    const secrets = await exec.ready();
    proxy.mode = 'hang';
    // One poll waits for an answer that never comes (up to the 15 s request timeout): only the
    // expiry timer can end the command on time.
    await until('a resolve to hang', () => proxy.resolves.hung >= 1);
    expect(read(join(secrets, 'API'))).toBe(V1);
    await until('the command to get SIGTERM', () => exec.lines().length > 0, 10_000);
    const late = Date.now() - expiresMs;
    expect(exec.lines()).toEqual(['terminated files=0']); // the folder was empty by then
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(1000);
    expect(proxy.resolves.hung).toBe(1); // the poll in flight never came back
    expect(await exec.exited).toBe(143);
    expect(existsSync(secrets)).toBe(false);
    expect(exec.stderr()).toContain(
      `agentpack-identity: watch: run ${info.run_id} expired at ${info.expires_at}: the secret files are removed and the command is sent SIGTERM\n`,
    );
    expectNoValues(exec);
  });
});

describe('private writes that fail partway', () => {
  it('leave no temporary or partial file behind (EFBIG under a file-size limit)', async () => {
    const dir = join(tmp.dir, 'limited');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'API'), 'old', { mode: 0o600 });
    const lib = pathToFileURL(join(root, 'packages/cli/lib/private-files.js')).href;
    const script = [
      `import { replacePrivateFile, writePrivateFile } from ${JSON.stringify(lib)};`,
      `const dir = process.argv[1];`,
      `const big = 'x'.repeat(256 * 1024);`,
      `for (const [what, write] of [`,
      `  ['replace', () => replacePrivateFile(dir + '/API', big)],`,
      `  ['write', () => writePrivateFile(dir + '/NEW', big)],`,
      `]) {`,
      `  try { write(); console.log(what + ' written'); }`,
      `  catch (error) { console.log(what + ': ' + error.message); }`,
      `}`,
    ].join('\n');
    // A limit of a few KB: the first write(2) is cut short, the next one fails with EFBIG.
    const res = await runProcess(
      'sh',
      [
        '-c',
        'ulimit -f 16 && exec "$@"',
        'sh',
        process.execPath,
        '--input-type=module',
        '-e',
        script,
        dir,
      ],
      { env: { PATH: process.env['PATH'] ?? '' } },
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(
      `replace: cannot write ${dir}/API (EFBIG)\nwrite: cannot write ${dir}/NEW (EFBIG)\n`,
    );
    expect(readdirSync(dir)).toEqual(['API']);
    expect(read(join(dir, 'API'))).toBe('old');
  });
});

describe('the end of the run, unit by unit (watchCommand)', () => {
  const HOUR = 3_600_000;
  /** A run that expires at `expiresMs`; its service is never asked (polls are an hour apart). */
  const runUntil = (expiresMs: number) =>
    ({
      info: {
        run_id: 'run_unit',
        expires_at: new Date(expiresMs).toISOString(),
        url: 'http://127.0.0.1:9',
      },
      key: null,
    }) as unknown as RunDir;
  const SECRETS = [
    { name: 'API', ref: 'agentpack.secret://agent-a/api_key', version: 1, value: V1 },
    { name: 'DB', ref: 'agentpack.secret://agent-a/db_pass', version: 1, value: DB1 },
  ];

  /** A watch of a folder with the two files; `seen` has what each hook found in the folder. */
  function startUnitWatch(expiresMs: number, extra: (dir: string) => void = () => {}) {
    const dir = join(tmp.dir, `secrets-${++n}`);
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'API'), V1, { mode: 0o600 });
    writeFileSync(join(dir, 'DB'), DB1, { mode: 0o600 });
    extra(dir);
    const seen: Array<[string, string[]]> = [];
    let stderr = '';
    const watch = watchCommand({
      run: runUntil(expiresMs),
      dir,
      secrets: SECRETS,
      intervalMs: HOUR,
      io: { env: {}, stdout: () => {}, stderr: (text) => (stderr += text) },
      reloadSignal: 'SIGHUP',
      signal: (signal) => seen.push([signal, readdirSync(dir).sort()]),
      onRunEnd: () => seen.push(['onRunEnd', readdirSync(dir).sort()]),
    });
    return { dir, seen, watch, stderr: () => stderr };
  }

  afterEach(() => {
    vi.useRealTimers();
    rmFaults.clear();
  });

  it('empties the whole folder (temporary files, what the command made) before SIGTERM', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const expiresMs = Date.now() + 3000;
    const unit = startUnitWatch(expiresMs, (dir) => {
      writeFileSync(join(dir, '.API.0123456789ab.tmp'), V2, { mode: 0o600 });
      writeFileSync(join(dir, 'made-by-the-command'), V3);
      mkdirSync(join(dir, 'cache'));
      writeFileSync(join(dir, 'cache', 'copy'), V1);
    });
    vi.advanceTimersByTime(2999);
    expect(unit.seen).toEqual([]);
    expect(unit.watch.ended()).toBe(false);
    vi.advanceTimersByTime(1);
    // Emptied first; then the broker's hook; then SIGTERM, which found nothing left.
    expect(unit.seen).toEqual([
      ['onRunEnd', []],
      ['SIGTERM', []],
    ]);
    expect(unit.watch.ended()).toBe(true);
    expect(existsSync(unit.dir)).toBe(true); // emptied, not removed: run exec removes it
    expect(unit.stderr()).toBe(
      `agentpack-identity: watch: run run_unit expired at ${new Date(expiresMs).toISOString()}: the secret files are removed and the command is sent SIGTERM\n`,
    );
    await unit.watch.stop();
    vi.advanceTimersByTime(2 * HOUR);
    expect(unit.seen).toHaveLength(2);
  });

  it('ends on time after a suspend or a forward jump of the clock (steps of at most 1 s)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const start = Date.now();
    const expiresMs = start + 7 * 24 * HOUR;
    const unit = startUnitWatch(expiresMs);
    vi.advanceTimersByTime(5000);
    expect(unit.seen).toEqual([]);
    // The machine sleeps through the expiry: the clock jumps, the timers' own time does not.
    vi.setSystemTime(expiresMs + 2000);
    vi.advanceTimersByTime(1000);
    expect(unit.seen).toEqual([
      ['onRunEnd', []],
      ['SIGTERM', []],
    ]);
    expect(unit.stderr()).toContain('watch: run run_unit expired at');
    await unit.watch.stop();
  });

  it('says what it could not remove, by name, and does not claim the files are removed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const expiresMs = Date.now() + 1000;
    const unit = startUnitWatch(expiresMs, (dir) => rmFaults.add(join(dir, 'DB')));
    vi.advanceTimersByTime(1000);
    expect(unit.seen).toEqual([
      ['onRunEnd', ['DB']],
      ['SIGTERM', ['DB']],
    ]);
    expect(unit.stderr()).toBe(
      `agentpack-identity: watch: run run_unit expired at ${new Date(expiresMs).toISOString()}: cannot remove DB (EBUSY) in ${unit.dir} (remove them by hand: they may hold secrets); the rest is removed and the command is sent SIGTERM\n`,
    );
    expect(unit.stderr()).not.toContain('the secret files are removed');
    for (const value of ALL_VALUES) expect(unit.stderr()).not.toContain(value);
    await unit.watch.stop();
  });
});
