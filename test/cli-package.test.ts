/**
 * The CLI as a device gets it: `npm pack` in packages/cli (its `prepack` bundles the CLI and the
 * protocol package into one file), the tarball installed with `npm install --offline` into an
 * empty folder under the system's temporary directory — far from this repository, so nothing
 * can resolve into its node_modules — and the installed bin run against the real service:
 * --help, --version, an agent, a device key, a secret put on stdin and read back with the key,
 * and an enrolled device reading the secret sealed. The install holds one package and nothing
 * of the service (no firebase-*, better-sqlite3 or @agentpack-identity/protocol), and the
 * maintenance commands, which need the service's code, refuse in one line. `npm install -g`,
 * as the README says, is checked with a temporary prefix.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLiveProcesses, runProcess, track, type CliRun } from './helpers/cli-process.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'packages/cli');
const pkg = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};
const TARBALL = `agentpack-identity-cli-${pkg.version}.tgz`;
const ONE_LINE = /^agentpack-identity: [^\n]+\n$/;
const NPM_TIMEOUT_MS = 120_000;

afterEach(killLiveProcesses);

const tmp = tempDir('agentpack-cli-package-');
const packDir = join(tmp.dir, 'pack');
const appDir = join(tmp.dir, 'app');
const globalDir = join(tmp.dir, 'global');
const home = join(tmp.dir, 'home');
let service: TestService;

/** npm, with a private cache and home and none of the caller's npm_config_* settings. */
function npm(args: string[], cwd: string): Promise<CliRun> {
  return runProcess('npm', args, {
    cwd,
    env: {
      PATH: [dirname(process.execPath), process.env['PATH'] ?? ''].join(delimiter),
      HOME: home,
      npm_config_cache: join(tmp.dir, 'npm-cache'),
      npm_config_update_notifier: 'false',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
    },
    timeoutMs: NPM_TIMEOUT_MS,
  });
}

/** The installed bin (as npm linked it) with `args`, only `env` (+ PATH, HOME) and `input`. */
function installed(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string; bin?: string } = {},
): Promise<CliRun> {
  const bin = options.bin ?? join(appDir, 'node_modules/.bin/agentpack-identity');
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(bin, [...args], {
        // The shebang's `node`: the one running the tests, and nothing of the repository.
        env: { PATH: dirname(process.execPath), HOME: home, ...options.env },
        cwd: tmp.dir,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin!.on('error', () => {});
    child.stdin!.end(options.input ?? '');
    const timer = setTimeout(() => {
      void killLiveProcesses();
      reject(new Error(`installed CLI ran over 30 s: ${args.join(' ')}\n${stdout}\n${stderr}`));
    }, 30_000);
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

/** Every directory under `dir`, as paths relative to it. */
function directories(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => {
      const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
      return [rel, ...directories(join(dir, e.name), rel)];
    });
}

const FORBIDDEN = /(^|\/)(firebase-[^/]*|better-sqlite3|@agentpack-identity\/protocol)$/;

beforeAll(async () => {
  for (const d of [packDir, appDir, globalDir, home]) mkdirSync(d, { recursive: true });
  // From a clean bundle: prepack must make it, not an earlier build.
  rmSync(join(cliDir, 'lib/agentpack-identity.js'), { force: true });
  const pack = await npm(['pack', '--pack-destination', packDir], cliDir);
  expect(pack.code, pack.stdout + pack.stderr).toBe(0);
  expect(readdirSync(packDir)).toEqual([TARBALL]);
  writeFileSync(join(appDir, 'package.json'), '{"name":"device","private":true}\n');
  const install = await npm(
    ['install', '--offline', '--no-audit', '--no-fund', join(packDir, TARBALL)],
    appDir,
  );
  expect(install.code, install.stdout + install.stderr).toBe(0);
  service = await startTestService();
}, 4 * NPM_TIMEOUT_MS);

afterAll(async () => {
  await service?.close();
  tmp.remove();
});

describe('the tarball npm pack makes', () => {
  it(`is ${TARBALL}: the launcher, the one-file bundle and its licences, no sources`, async () => {
    const list = await npm(['pack', '--dry-run', '--json'], cliDir);
    expect(list.code, list.stderr).toBe(0);
    const [entry] = JSON.parse(list.stdout.slice(list.stdout.indexOf('['))) as Array<{
      name: string;
      filename: string;
      files: Array<{ path: string }>;
    }>;
    expect(entry!.name).toBe('@agentpack-identity/cli');
    expect(entry!.filename).toBe(TARBALL);
    expect(entry!.files.map((f) => f.path).sort()).toEqual([
      'bin/agentpack-identity.js',
      'lib/THIRD-PARTY-LICENSES.txt',
      'lib/agentpack-identity.js',
      'package.json',
    ]);
  });

  it('installs as one package with no dependencies: nothing of the service or the workspace', () => {
    const installedPkg = JSON.parse(
      readFileSync(join(appDir, 'node_modules/@agentpack-identity/cli/package.json'), 'utf8'),
    );
    expect(installedPkg.name).toBe('@agentpack-identity/cli');
    expect(installedPkg.dependencies ?? {}).toEqual({});
    expect(installedPkg.bin).toEqual({ 'agentpack-identity': 'bin/agentpack-identity.js' });
    const dirs = directories(join(appDir, 'node_modules'));
    expect(dirs.filter((d) => FORBIDDEN.test(d))).toEqual([]);
    expect(dirs.filter((d) => !d.startsWith('.'))).toEqual([
      '@agentpack-identity',
      '@agentpack-identity/cli',
      '@agentpack-identity/cli/bin',
      '@agentpack-identity/cli/lib',
    ]);
    // The bundle names no module outside node: but the service's, which it only loads lazily.
    const bundle = readFileSync(
      join(appDir, 'node_modules/@agentpack-identity/cli/lib/agentpack-identity.js'),
      'utf8',
    );
    const specifiers = new Set(
      [
        ...bundle.matchAll(/^import\s[^;]*?\sfrom\s*["']([^"']+)["'];?$/gm),
        ...bundle.matchAll(/\b(?:import|__require|require)\(\s*["']([^"']+)["']\s*\)/g),
      ].map((m) => m[1]!),
    );
    expect(specifiers).toContain('node:fs');
    expect([...specifiers].filter((s) => !/^(node:)?[a-z_]+$/.test(s))).toEqual([]);
    expect(bundle).not.toContain(root);
  });
});

describe('the installed CLI', () => {
  it('--help and --version', async () => {
    const help = await installed(['--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('agentpack-identity token mint');
    expect(help.stdout).toContain('agentpack-identity secrets get NAME --device-key-file FILE');
    const version = await installed(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `agentpack-identity ${pkg.version}\n` });
  });

  it('creates an agent and a device key, puts a secret from stdin and reads it with the key', async () => {
    const bridgeKeyFile = join(tmp.dir, 'bridge-key');
    writeFileSync(bridgeKeyFile, `${BRIDGE_KEY}\n`, { mode: 0o600 });
    chmodSync(bridgeKeyFile, 0o600);
    const operator = ['--url', service.url, '--bridge-key-file', bridgeKeyFile];

    const created = await installed([
      'agents',
      'create',
      '--display-name',
      'packaged device',
      '--json',
      ...operator,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const agent = JSON.parse(created.stdout).agent_id as string;
    expect(agent).toMatch(/^agent-/);

    const deviceKeyFile = join(tmp.dir, 'device-key');
    const issued = await installed([
      'keys',
      'issue',
      '--agent',
      agent,
      '--label',
      'packaged',
      '--out',
      deviceKeyFile,
      '--json',
      ...operator,
    ]);
    expect(issued.code, issued.stderr).toBe(0);
    expect(existsSync(deviceKeyFile)).toBe(true);
    const deviceKey = readFileSync(deviceKeyFile, 'utf8').trim();
    expect(issued.stdout).not.toContain(deviceKey);

    const put = await installed(['secrets', 'put', 'openai_key', '--agent', agent, ...operator], {
      input: 'sk-packaged-42',
    });
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ name: 'openai_key', version: 1 });
    expect(put.stdout).not.toContain('sk-packaged-42');

    const got = await installed([
      'secrets',
      'get',
      'openai_key',
      '--url',
      service.url,
      '--device-key-file',
      deviceKeyFile,
    ]);
    expect(got).toMatchObject({ code: 0, stdout: 'sk-packaged-42', stderr: '' });

    // An enrolled device: its own keys, the sealed device key, then the value sealed to it.
    const keys = join(tmp.dir, 'device');
    const keygen = await installed(['device', 'keygen', '--out', keys]);
    expect(keygen.code, keygen.stderr).toBe(0);
    const { fingerprint } = JSON.parse(keygen.stdout) as { fingerprint: string };
    const enrollment = await service.post(
      '/device/enrollments/create',
      { agent_id: agent, expected_fingerprint: fingerprint },
      service.bridge,
    );
    expect(enrollment.status, enrollment.text).toBe(201);
    const enrolled = await installed([
      'device',
      'enroll',
      '--url',
      service.url,
      '--code',
      enrollment.body.code,
      '--keys',
      keys,
    ]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const sealed = await installed([
      'secrets',
      'get',
      'openai_key',
      '--url',
      service.url,
      '--device-key-file',
      join(keys, 'device-key'),
      '--json',
    ]);
    expect(sealed.code, sealed.stderr).toBe(0);
    expect(JSON.parse(sealed.stdout)).toMatchObject({
      name: 'openai_key',
      value: 'sk-packaged-42',
    });

    // A run of the enrolled device, and a command run with live secret files (--watch).
    const runDir = join(tmp.dir, 'run');
    const spawned = await installed([
      'run',
      'spawn',
      '--url',
      service.url,
      '--device-key-file',
      join(keys, 'device-key'),
      '--task',
      'packaged task',
      '--scope',
      'secrets/get:openai_key',
      '--ttl',
      '120',
      '--out',
      runDir,
    ]);
    expect(spawned.code, spawned.stderr).toBe(0);
    const ran = await installed([
      'run',
      'exec',
      '--run-dir',
      runDir,
      '--watch',
      '5',
      '--ref',
      `OPENAI=agentpack.secret://${agent}/openai_key`,
      '--',
      'node',
      '-e',
      "process.stdout.write(require('fs').readFileSync(process.env.AGENTPACK_SECRETS_DIR + '/OPENAI', 'utf8').length + ' bytes')",
    ]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe(`${'sk-packaged-42'.length} bytes`);
    expect(ran.stdout + ran.stderr).not.toContain('sk-packaged-42');
  });

  it("refuses the maintenance commands in one line: they need the service's code", async () => {
    // A decoy of the service's module in a folder above the install (any local user could plant
    // one under /tmp): the standalone CLI never loads it.
    const marker = join(tmp.dir, 'decoy-ran');
    for (const name of ['agentpack-identity-functions', '@agentpack-identity/functions']) {
      const decoy = join(tmp.dir, 'node_modules', name, 'lib');
      mkdirSync(decoy, { recursive: true });
      writeFileSync(
        join(decoy, 'maintenance.js'),
        `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n`,
      );
      writeFileSync(join(decoy, '..', 'package.json'), `{"name":"${name}","version":"0.0.0"}\n`);
    }
    for (const args of [
      ['maintenance', 'prune'],
      ['maintenance', 'migrate-digests'],
      ['secrets', 'rewrap'],
    ]) {
      const res = await installed(args, { env: { AGENTPACK_DATA_DIR: join(tmp.dir, 'data') } });
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(ONE_LINE);
      expect(res.stderr).toContain("run it on the service's machine, from the repository");
    }
    expect(existsSync(join(tmp.dir, 'data'))).toBe(false);
    expect(existsSync(marker)).toBe(false);
  });

  it('installs globally from the tarball, as the README says', async () => {
    const res = await npm(
      [
        'install',
        '-g',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--prefix',
        globalDir,
        `./${TARBALL}`,
      ],
      packDir,
    );
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const version = await installed(['--version'], {
      bin: join(globalDir, 'bin/agentpack-identity'),
    });
    expect(version).toMatchObject({ code: 0, stdout: `agentpack-identity ${pkg.version}\n` });
    const dirs = directories(join(globalDir, 'lib/node_modules'));
    expect(dirs.filter((d) => FORBIDDEN.test(d))).toEqual([]);
  });
});
