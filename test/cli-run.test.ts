/**
 * The `run` commands of the CLI as a workload runs them: the built launcher
 * (`node packages/cli/bin/agentpack-identity.js`) as a child process, against the real service
 * over HTTP (`startTestService`), and for `run exec` a real command (`node -e`) that reads its
 * secret from the file and looks for it in its environment. Needs `npm run build` first.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeRawKey,
  encodeRawKey,
  signingPublicKeyOf,
  signRequest,
} from '@agentpack-identity/protocol';
import { startChild } from './helpers/child.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { CLI_BIN, killLiveProcesses, runNode, track } from './helpers/cli-process.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = CLI_BIN;

// Whatever a failed or timed-out test left running ends here, by process group.
afterEach(killLiveProcesses);

/** The secret the run reads: a newline and a non-ASCII letter, so the file must be exact. */
const SECRET = 'sk-cli-run-Zq81xv\nsecond line ü';
const OLD_SECRET = 'sk-cli-run-old-Hp27aa';
const OTHER_SECRET = 'o-cli-run-Jt55mm';
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let svc: TestService;
let tmp: { dir: string; remove(): void };
/** TMPDIR of the CLI: where `run exec` makes its private directories, so the test sees them. */
let execTmp: string;
let deviceKeyFile: string;

/** Runs the CLI with a clean environment (PATH, TMPDIR and `env`). */
const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
  runNode(args, { TMPDIR: execTmp, ...env });

/** Exactly one line on stderr, prefixed with the program's name. */
const ONE_LINE = /^agentpack-identity: [^\n]+\n$/;
const mode = (path: string) => statSync(path).mode & 0o777;

async function spawnRun(
  out: string,
  scope = 'secrets/get:openai_key,runs/spawn',
  extra: string[] = [],
): Promise<{ res: CliResult; info: any }> {
  const res = await cli([
    'run',
    'spawn',
    '--url',
    svc.url,
    '--device-key-file',
    deviceKeyFile,
    '--task',
    'summarise inbox',
    '--scope',
    scope,
    '--ttl',
    '120',
    '--out',
    out,
    ...extra,
  ]);
  expect(res.code, res.stderr).toBe(0);
  return { res, info: JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) };
}

/** The run's private key as the CLI wrote it. */
function seedOf(dir: string): Uint8Array {
  const seed = decodeRawKey(readFileSync(join(dir, 'run.key'), 'utf8').trim());
  if (seed === null) throw new Error('run.key is not a raw key');
  return seed;
}

/** A request as the run, signed by the test itself with the key from the run's directory. */
function asRun(dir: string, path: string, body: object) {
  const { run_id } = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  const raw = JSON.stringify(body);
  return svc.post(path, raw, {
    'x-agentpack-run': run_id,
    ...signRequest({
      method: 'POST',
      path,
      body: raw,
      signingSeed: seedOf(dir),
      nowMs: Date.now(),
    }),
  });
}

const status = async (runId: string) =>
  (await svc.request(`/.well-known/agentpack-agent-identity/${runId}`, { method: 'GET' })).body
    ?.status;

beforeAll(() => {
  if (!existsSync(join(root, 'packages/cli/lib/commands/run-exec.js'))) {
    throw new Error('packages/cli/lib is not built: run npm run build before these tests');
  }
});
beforeEach(async () => {
  tmp = tempDir('agentpack-cli-run-');
  execTmp = join(tmp.dir, 'tmp');
  mkdirSync(execTmp, { mode: 0o700 });
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b']) {
    expect(
      (await svc.post('/agents/create', { agent_id: id, display_name: id }, svc.bridge)).status,
    ).toBe(201);
  }
  const issued = await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge);
  expect(issued.status).toBe(201);
  deviceKeyFile = join(tmp.dir, 'agent-a.device-key');
  writeFileSync(deviceKeyFile, `${issued.body.device_key}\n`, { mode: 0o600 });
  const dk = svc.device(issued.body.device_key);
  for (const [name, value] of [
    ['openai_key', OLD_SECRET],
    ['openai_key', SECRET],
    ['other', OTHER_SECRET],
  ] as const) {
    expect((await svc.post('/secrets/put', { name, value }, dk)).status).toBe(200);
  }
});
afterEach(async () => {
  await svc.close();
  tmp.remove();
});

describe('help and bad command lines', () => {
  it.each([
    [['run', '--help'], 'run exec --run-dir DIR'],
    [['run', 'spawn', '--help'], 'DIR/run.key'],
    [['run', 'exec', '--help'], 'AGENTPACK_SECRETS_DIR'],
    [['run', 'exec', '--run-dir', 'x', '--help', '--', 'true'], '--ref NAME=REF'],
  ])('%j prints that command’s help and exits 0', async (args, text) => {
    const res = await cli(args);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^usage: agentpack-identity run /);
    expect(res.stdout).toContain(text);
    expect(res.stderr).toBe('');
  });

  it('lists the run commands in the top-level help', async () => {
    const res = await cli(['--help']);
    expect(res.stdout).toContain('agentpack-identity run spawn --url URL --device-key-file FILE');
    expect(res.stdout).toContain('agentpack-identity run exec --run-dir DIR');
  });

  it.each([
    [['run'], /missing command/],
    [['run', 'launch'], /unknown command "launch"/],
    [
      ['run', 'spawn', '--task', 't', '--scope', 'agents/get', '--out', 'd'],
      /--device-key-file is required/,
    ],
    [
      [
        'run',
        'spawn',
        '--url',
        'http://127.0.0.1:1',
        '--device-key-file',
        'f',
        '--task',
        't',
        '--scope',
        'agents/get',
      ],
      /--out is required/,
    ],
    [
      [
        'run',
        'spawn',
        '--url',
        'http://127.0.0.1:1',
        '--device-key-file',
        'f',
        '--parent-dir',
        'p',
        '--task',
        't',
        '--scope',
        'a',
        '--out',
        'd',
      ],
      /not both/,
    ],
    [
      [
        'run',
        'spawn',
        '--url',
        'http://127.0.0.1:1',
        '--device-key-file',
        'f',
        '--task',
        't',
        '--scope',
        'a',
        '--ttl',
        '0',
        '--out',
        'd',
      ],
      /--ttl must be/,
    ],
    [['run', 'exec', '--run-dir', 'd', 'true'], /after "--"/],
    [['run', 'exec', '--run-dir', 'd', '--'], /no command/],
    [['run', 'exec', '--', 'true'], /--run-dir is required/],
    [
      ['run', 'exec', '--run-dir', 'd', '--ref', 'noequals', '--', 'true'],
      /--ref must be NAME=REF/,
    ],
    [
      ['run', 'exec', '--run-dir', 'd', '--ref', '../x=agentpack.secret://agent-a/x', '--', 'true'],
      /--ref must be NAME=REF/,
    ],
    [
      ['run', 'exec', '--run-dir', 'd', '--ref', 'X=https://example.com/x', '--', 'true'],
      /agentpack\.secret:\/\//,
    ],
    [
      [
        'run',
        'exec',
        '--run-dir',
        'd',
        '--ref',
        'X=agentpack.secret://agent-a/x',
        '--ref',
        'X=agentpack.secret://agent-a/y',
        '--',
        'true',
      ],
      /--ref X given more than once/,
    ],
  ])('%j exits 2 with one line', async (args, message) => {
    const res = await cli(args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
    expect(res.stdout).toBe('');
  });

  it('refuses plain http to anything but loopback, before any key is made', async () => {
    const out = join(tmp.dir, 'run');
    const res = await cli([
      'run',
      'spawn',
      '--url',
      'http://example.com',
      '--device-key-file',
      deviceKeyFile,
      '--task',
      't',
      '--scope',
      'agents/get',
      '--out',
      out,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('plain http is allowed to loopback addresses only');
    expect(existsSync(out)).toBe(false);
  });
});

describe('run spawn', () => {
  it('writes the run’s directory with private modes, and the run works with its key', async () => {
    const out = join(tmp.dir, 'runs', 'one');
    const { res, info } = await spawnRun(out);
    expect(mode(out)).toBe(0o700);
    expect(mode(join(out, 'run.key'))).toBe(0o600);
    expect(mode(join(out, 'run.json'))).toBe(0o600);
    expect(info).toMatchObject({
      run_id: expect.stringMatching(/^run_[A-Za-z0-9_-]{22}$/),
      agent_id: 'agent-a',
      parent_run_id: null,
      scope: ['secrets/get:openai_key', 'runs/spawn'],
      url: svc.url,
    });
    expect(info.root_run_id).toBe(info.run_id);
    expect(info.lineage).toEqual([info.run_id]);
    const printed = JSON.parse(res.stdout);
    expect(printed).toEqual({
      run_id: info.run_id,
      lineage: [info.run_id],
      expires_at: info.expires_at,
    });
    expect(Date.parse(info.expires_at) - Date.parse(info.created_at)).toBe(120_000);
    // The private key is never printed.
    const seedText = readFileSync(join(out, 'run.key'), 'utf8').trim();
    expect(res.stdout + res.stderr).not.toContain(seedText);

    // The service pinned the public half of exactly this key, and the run acts with it.
    const doc = await svc.request(`/.well-known/agentpack-agent-identity/${info.run_id}`, {
      method: 'GET',
    });
    expect(doc.body).toMatchObject({ status: 'active', agent_id: 'agent-a' });
    expect(doc.body.public_key.x).toBe(encodeRawKey(signingPublicKeyOf(seedOf(out))));
    const got = await asRun(out, '/secrets/get', { name: 'openai_key' });
    expect(got.status).toBe(200);
    expect(got.body.value).toBe(SECRET);
    expect((await asRun(out, '/secrets/get', { name: 'other' })).status).toBe(403);
  });

  it('makes a fresh key for every run and never overwrites a run directory', async () => {
    const a = join(tmp.dir, 'a');
    const b = join(tmp.dir, 'b');
    const first = await spawnRun(a);
    const second = await spawnRun(b);
    expect(second.info.run_id).not.toBe(first.info.run_id);
    expect(readFileSync(join(b, 'run.key'), 'utf8')).not.toBe(
      readFileSync(join(a, 'run.key'), 'utf8'),
    );

    const keyBefore = readFileSync(join(a, 'run.key'), 'utf8');
    const again = await cli([
      'run',
      'spawn',
      '--url',
      svc.url,
      '--device-key-file',
      deviceKeyFile,
      '--task',
      't',
      '--scope',
      'agents/get',
      '--out',
      a,
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(ONE_LINE);
    expect(again.stderr).toContain('already exists');
    expect(readFileSync(join(a, 'run.key'), 'utf8')).toBe(keyBefore);
    expect(JSON.parse(readFileSync(join(a, 'run.json'), 'utf8')).run_id).toBe(first.info.run_id);
  });

  it('spawns a child with --parent-dir: lineage from the root, signed as the parent', async () => {
    const parent = join(tmp.dir, 'parent');
    const { info: root } = await spawnRun(parent);
    const child = join(tmp.dir, 'child');
    // No --url: the parent's service.
    const res = await cli([
      'run',
      'spawn',
      '--parent-dir',
      parent,
      '--task',
      'sub-task',
      '--scope',
      'secrets/get:openai_key,runs/spawn',
      '--ttl',
      '60',
      '--out',
      child,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const info = JSON.parse(readFileSync(join(child, 'run.json'), 'utf8'));
    expect(info).toMatchObject({
      agent_id: 'agent-a',
      parent_run_id: root.run_id,
      root_run_id: root.run_id,
      lineage: [root.run_id, info.run_id],
      url: svc.url,
    });
    expect(JSON.parse(res.stdout).lineage).toEqual([root.run_id, info.run_id]);
    expect((await asRun(child, '/secrets/get', { name: 'openai_key' })).body.value).toBe(SECRET);

    // A grandchild through the child's directory.
    const grandchild = join(tmp.dir, 'grandchild');
    const deeper = await cli([
      'run',
      'spawn',
      '--parent-dir',
      child,
      '--task',
      'leaf',
      '--scope',
      'secrets/get:openai_key',
      '--out',
      grandchild,
    ]);
    expect(deeper.code, deeper.stderr).toBe(0);
    expect(JSON.parse(deeper.stdout).lineage).toEqual([
      root.run_id,
      info.run_id,
      expect.any(String),
    ]);

    // Wider than the parent: refused, and no key is left behind.
    const wide = join(tmp.dir, 'wide');
    const refused = await cli([
      'run',
      'spawn',
      '--parent-dir',
      parent,
      '--task',
      't',
      '--scope',
      'secrets/get:other',
      '--out',
      wide,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(ONE_LINE);
    expect(refused.stderr).toContain('HTTP 403');
    expect(readdirSync(wide)).toEqual([]);
  });

  it('signs with the enrolled device’s key when the device key file is in a device directory', async () => {
    expect(
      (
        await svc.post(
          '/settings/set',
          { key: 'device.require_signed_requests', value: true },
          svc.bridge,
        )
      ).status,
    ).toBe(200);
    const device = join(tmp.dir, 'device');
    const keygen = await cli(['device', 'keygen', '--out', device]);
    expect(keygen.code, keygen.stderr).toBe(0);
    const enrollment = await svc.post(
      '/device/enrollments/create',
      { agent_id: 'agent-a', expected_fingerprint: JSON.parse(keygen.stdout).fingerprint },
      svc.bridge,
    );
    expect(enrollment.status).toBe(201);
    const enroll = await cli([
      'device',
      'enroll',
      '--url',
      svc.url,
      '--code',
      enrollment.body.code,
      '--keys',
      device,
    ]);
    expect(enroll.code, enroll.stderr).toBe(0);
    const args = (file: string, out: string) => [
      'run',
      'spawn',
      '--url',
      svc.url,
      '--device-key-file',
      file,
      '--task',
      't',
      '--scope',
      'secrets/get:openai_key',
      '--out',
      out,
    ];
    const signed = await cli(args(join(device, 'device-key'), join(tmp.dir, 'signed')));
    expect(signed.code, signed.stderr).toBe(0);
    // The same device key away from its signing key: unsigned, so refused.
    const bare = join(tmp.dir, 'bare-device-key');
    cpSync(join(device, 'device-key'), bare);
    const unsigned = await cli(args(bare, join(tmp.dir, 'unsigned')));
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain('HTTP 401');
  });
});

/**
 * The command `run exec` runs: reads its secrets from the directory it is told, and reports
 * what it found as JSON (digests, never values): the directory's and files' modes, and which
 * environment variables or arguments hold any secret's value.
 */
const REPORT = `
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const dir = process.env.AGENTPACK_SECRETS_DIR;
const names = fs.readdirSync(dir).sort();
const values = names.map((n) => fs.readFileSync(path.join(dir, n), 'utf8'));
const leaks = Object.entries(process.env)
  .filter(([, v]) => values.some((s) => v.includes(s)))
  .map(([k]) => k);
console.log(JSON.stringify({
  dir,
  dirMode: fs.statSync(dir).mode & 0o777,
  files: names.map((n, i) => ({
    name: n,
    mode: fs.statSync(path.join(dir, n)).mode & 0o777,
    sha256: crypto.createHash('sha256').update(values[i], 'utf8').digest('hex'),
  })),
  leaks,
  inArgv: process.argv.some((a) => values.some((s) => a.includes(s))),
  runId: process.env.AGENTPACK_RUN_ID,
  runDir: process.env.AGENTPACK_RUN_DIR,
  bridgeKey: process.env.AGENTPACK_BRIDGE_KEY ?? null,
  envNames: Object.keys(process.env).filter((k) => k.startsWith('AGENTPACK_')).sort(),
}));
`;

describe('run exec', () => {
  it('hands the command its secrets in private files only, then removes them and completes the run', async () => {
    const dir = join(tmp.dir, 'run');
    const { info } = await spawnRun(dir);
    const res = await cli(
      [
        'run',
        'exec',
        '--run-dir',
        dir,
        '--ref',
        'OPENAI=agentpack.secret://agent-a/openai_key',
        '--ref',
        'openai.v1=agentpack.secret://agent-a/openai_key#1',
        '--',
        process.execPath,
        '-e',
        REPORT,
      ],
      // The operator's bridge key in the shell must not reach the workload.
      { AGENTPACK_BRIDGE_KEY: BRIDGE_KEY },
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    const report = JSON.parse(res.stdout);
    expect(report.files).toEqual([
      { name: 'OPENAI', mode: 0o600, sha256: sha256(SECRET) },
      { name: 'openai.v1', mode: 0o600, sha256: sha256(OLD_SECRET) },
    ]);
    expect(report.dirMode).toBe(0o700);
    expect(report.dir.startsWith(join(execTmp, 'agentpack-secrets-'))).toBe(true);
    expect(report.leaks).toEqual([]);
    expect(report.inArgv).toBe(false);
    expect(report.runId).toBe(info.run_id);
    expect(report.runDir).toBe(dir);
    expect(report.bridgeKey).toBeNull();
    expect(report.envNames).toEqual([
      'AGENTPACK_RUN_DIR',
      'AGENTPACK_RUN_ID',
      'AGENTPACK_SECRETS_DIR',
    ]);
    // Afterwards: no files, a completed run, and no value anywhere on the way.
    expect(existsSync(report.dir)).toBe(false);
    expect(readdirSync(execTmp)).toEqual([]);
    expect(await status(info.run_id)).toBe('completed');
    for (const text of [res.stdout, res.stderr, svc.logs.join('\n')]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(OLD_SECRET);
    }
    const audit = (await svc.store.auditEvents(200)).filter((e) => e.actor.kind === 'run');
    expect(audit.map((e) => e.action)).toContain('run.complete');
    expect(audit.every((e) => e.actor.run_id === info.run_id)).toBe(true);
  });

  it('passes the command’s exit code through, a signal as 128+N, and still cleans up', async () => {
    const dir = join(tmp.dir, 'run');
    const { info } = await spawnRun(dir);
    const failing = await cli([
      'run',
      'exec',
      '--run-dir',
      dir,
      '--ref',
      'K=agentpack.secret://agent-a/openai_key',
      '--',
      process.execPath,
      '-e',
      'console.log(process.env.AGENTPACK_SECRETS_DIR); process.exit(7)',
    ]);
    expect(failing.code).toBe(7);
    expect(existsSync(failing.stdout.trim())).toBe(false);
    expect(await status(info.run_id)).toBe('completed');

    const other = join(tmp.dir, 'other');
    const { info: second } = await spawnRun(other);
    const killed = await cli([
      'run',
      'exec',
      '--run-dir',
      other,
      '--ref',
      'K=agentpack.secret://agent-a/openai_key',
      '--',
      process.execPath,
      '-e',
      "process.kill(process.pid, 'SIGKILL')",
    ]);
    expect(killed.code).toBe(128 + 9);
    expect(readdirSync(execTmp)).toEqual([]);
    expect(await status(second.run_id)).toBe('completed');

    const third = join(tmp.dir, 'third');
    const { info: missing } = await spawnRun(third);
    const notFound = await cli([
      'run',
      'exec',
      '--run-dir',
      third,
      '--',
      join(tmp.dir, 'no-such-command'),
    ]);
    expect(notFound.code).toBe(127);
    expect(notFound.stderr).toMatch(ONE_LINE);
    expect(readdirSync(execTmp)).toEqual([]);
    expect(await status(missing.run_id)).toBe('completed');
  });

  it('passes SIGTERM on to the command, then removes the files and completes the run', async () => {
    const dir = join(tmp.dir, 'run');
    const { info } = await spawnRun(dir);
    const script = `
      process.on('SIGTERM', () => { console.log('command got SIGTERM'); process.exit(143); });
      console.log('ready ' + process.env.AGENTPACK_SECRETS_DIR);
      setInterval(() => {}, 1000);
    `;
    const child = startChild(
      process.execPath,
      [
        BIN,
        'run',
        'exec',
        '--run-dir',
        dir,
        '--ref',
        'K=agentpack.secret://agent-a/openai_key',
        '--',
        process.execPath,
        '-e',
        script,
      ],
      { PATH: process.env['PATH'] ?? '', TMPDIR: execTmp },
    );
    track(child.proc);
    const ready = await child.waitFor(/ready \S+/);
    const secretsDir = ready.slice('ready '.length);
    expect(readFileSync(join(secretsDir, 'K'), 'utf8')).toBe(SECRET);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(143);
    expect(child.output()).toContain('command got SIGTERM');
    expect(existsSync(secretsDir)).toBe(false);
    expect(await status(info.run_id)).toBe('completed');
  });

  it('does not run the command when a reference cannot be resolved, and leaves the run active', async () => {
    const dir = join(tmp.dir, 'run');
    const { info } = await spawnRun(dir, 'secrets/get:openai_key');
    const marker = join(tmp.dir, 'ran');
    const command = [
      '--',
      process.execPath,
      '-e',
      'require("fs").writeFileSync(process.argv[1], "x")',
      marker,
    ];
    for (const ref of [
      'agentpack.secret://agent-a/other', // not in the run's scope
      'agentpack.secret://agent-b/openai_key', // another agent's
      'agentpack.secret://agent-a/openai_key#9', // no such version
    ]) {
      const res = await cli([
        'run',
        'exec',
        '--run-dir',
        dir,
        '--ref',
        'A=agentpack.secret://agent-a/openai_key',
        '--ref',
        `B=${ref}`,
        ...command,
      ]);
      expect(res.code, ref).toBe(1);
      expect(res.stderr).toMatch(ONE_LINE);
      expect(res.stderr).toContain('cannot resolve the secrets: HTTP');
      expect(res.stderr).toContain(
        `the command was not run, and run ${info.run_id} was not completed`,
      );
      expect(res.stderr).not.toContain(SECRET);
      expect(existsSync(marker)).toBe(false);
      expect(readdirSync(execTmp)).toEqual([]);
      expect(await status(info.run_id)).toBe('active');
    }
    // The same command with a readable reference does run: the marker above could appear.
    const ok = await cli([
      'run',
      'exec',
      '--run-dir',
      dir,
      '--ref',
      'A=agentpack.secret://agent-a/openai_key',
      ...command,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(marker)).toBe(true);
    expect(await status(info.run_id)).toBe('completed');

    // A completed run resolves nothing more: the command does not run again.
    const again = await cli([
      'run',
      'exec',
      '--run-dir',
      dir,
      '--ref',
      'A=agentpack.secret://agent-a/openai_key',
      '--',
      process.execPath,
      '-e',
      'process.exit(0)',
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('HTTP 401');
  });

  it('refuses a run whose run.json says it has expired, and a key others can read', async () => {
    const dir = join(tmp.dir, 'run');
    await spawnRun(dir);
    const expired = join(tmp.dir, 'expired');
    cpSync(dir, expired, { recursive: true });
    const info = JSON.parse(readFileSync(join(expired, 'run.json'), 'utf8'));
    writeFileSync(
      join(expired, 'run.json'),
      JSON.stringify({ ...info, expires_at: new Date(Date.now() - 1000).toISOString() }),
    );
    const marker = join(tmp.dir, 'ran');
    const command = [
      '--',
      process.execPath,
      '-e',
      'require("fs").writeFileSync(process.argv[1], "x")',
      marker,
    ];
    const res = await cli(['run', 'exec', '--run-dir', expired, ...command]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('expired');
    const open = join(tmp.dir, 'open');
    cpSync(dir, open, { recursive: true });
    chmodSync(join(open, 'run.key'), 0o644);
    const readable = await cli(['run', 'exec', '--run-dir', open, ...command]);
    expect(readable.code).toBe(1);
    expect(readable.stderr).toContain('readable by others');
    expect(existsSync(marker)).toBe(false);
  });
});
