/**
 * `run exec --broker`: the fail-closed plan (an `http://` origin, an unknown provider, a ref
 * that cannot be resolved, a device directory that is not enrolled: the command never starts,
 * proved by the marker file it would write), the built-in providers' environment, and TLS
 * verification (the upstream's own certificate is refused without `ca_file`). The built CLI as
 * a process against the real service. Needs `npm run build` first.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { get } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  makeCertificate,
  REAL_KEY,
  startUpstream,
  startWorld,
  writeProviders,
  type Upstream,
  type World,
} from './helpers/broker-fixture.js';
import { killLiveProcesses, runNode } from './helpers/cli-process.js';
import { tempDir } from './helpers/temp-dir.js';

afterEach(killLiveProcesses);

const tmp = tempDir('agentpack-cli-broker-');
let upstream: Upstream;
let world: World;
let cert: { key: string; cert: string };
let run: string;
let n = 0;

/** A command that only writes a marker file: it ran iff the file exists. */
const markerCommand = (marker: string) => [
  process.execPath,
  '-e',
  `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`,
];

/** A command that prints its environment's broker variables and one call's status. */
const PROBE = `
const http = require('http');
const base = new URL(process.env.CUSTOM_BASE_URL ?? process.env.OPENAI_BASE_URL);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => /_(BASE_URL|API_KEY)$/.test(k)));
const req = http.get({ host: base.hostname, port: base.port, path: base.pathname + '/models',
  headers: { authorization: 'Bearer ' + (process.env.CUSTOM_API_KEY ?? process.env.OPENAI_API_KEY) } },
  (res) => { res.resume(); res.on('end', () => console.log(JSON.stringify({ env, status: res.statusCode }))); });
req.on('error', (e) => { console.log(JSON.stringify({ env, error: e.code })); });
`;

function exec(brokerArgs: string[], command: string[], env: Record<string, string> = {}) {
  return runNode(['run', 'exec', '--run-dir', run, ...brokerArgs, '--', ...command], env, {
    timeoutMs: 60_000,
  });
}

const marker = () => join(tmp.dir, `marker-${++n}`);
const REF = 'agentpack.secret://mail-bot/provider_key';

beforeAll(async () => {
  cert = await makeCertificate(tmp.dir);
  upstream = await startUpstream(cert);
  world = await startWorld(tmp.dir);
  run = await world.spawnRun(join(tmp.dir, 'run'));
}, 60_000);
afterAll(async () => {
  await upstream?.close();
  await world?.svc.close();
  tmp.remove();
});

describe('the fail-closed plan: the command never starts', () => {
  it('refuses an origin that is not https (exit 2)', async () => {
    const providers = writeProviders(join(tmp.dir, 'http.json'), 'http://127.0.0.1:9', null);
    const file = marker();
    const res = await exec(
      ['--device-dir', world.keys, '--broker', `custom=${REF}`, '--broker-providers', providers],
      markerCommand(file),
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('origin must be https://');
    expect(existsSync(file)).toBe(false);
  });

  it.each([
    ['an unknown provider', ['--broker', `nope=${REF}`], 2, 'unknown provider'],
    ['a malformed --broker', ['--broker', 'openai'], 2, 'PROVIDER=REF'],
    [
      'a provider given twice',
      ['--broker', `openai=${REF}`, '--broker', `openai=${REF}`],
      2,
      'more than once',
    ],
    [
      'a ref that cannot be resolved',
      ['--broker', 'openai=agentpack.secret://mail-bot/missing'],
      1,
      'HTTP 404',
    ],
    [
      'another agent’s secret',
      ['--broker', 'openai=agentpack.secret://someone-else/provider_key'],
      1,
      'HTTP',
    ],
  ])('refuses %s', async (_what, args, code, text) => {
    const file = marker();
    const res = await exec(['--device-dir', world.keys, ...args], markerCommand(file));
    expect(res.code, res.stderr).toBe(code);
    expect(res.stderr).toContain(text);
    expect(res.stderr).not.toContain(REAL_KEY);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses to start when the broker cannot bind its port (taken)', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const file = marker();
      const res = await exec(
        ['--device-dir', world.keys, '--broker', `openai=${REF}`],
        markerCommand(file),
        { AGENTPACK_BROKER_PORT: port },
      );
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain('cannot start the credential broker');
      expect(res.stderr).not.toContain(REAL_KEY);
      expect(existsSync(file)).toBe(false);
      const bad = await exec(
        ['--device-dir', world.keys, '--broker', `openai=${REF}`],
        markerCommand(file),
        {
          AGENTPACK_BROKER_PORT: 'eighty',
        },
      );
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('AGENTPACK_BROKER_PORT must be a port number');
      expect(existsSync(file)).toBe(false);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  it('refuses --broker without --device-dir, and broker options without --broker (exit 2)', async () => {
    const file = marker();
    const missing = await exec(['--broker', `openai=${REF}`], markerCommand(file));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--device-dir is required');
    const alone = await exec(['--broker-max-requests', '3'], markerCommand(file));
    expect(alone.code).toBe(2);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a device directory that was never enrolled', async () => {
    const bare = join(tmp.dir, 'not-enrolled');
    expect((await runNode(['device', 'keygen', '--out', bare])).code).toBe(0);
    const file = marker();
    const res = await exec(
      ['--device-dir', bare, '--broker', `openai=${REF}`],
      markerCommand(file),
    );
    expect(res.code).toBe(1);
    expect(existsSync(file)).toBe(false);
  });
});

describe('a brokered secret', () => {
  it('cannot be read by the run, even in its scope: only the broker has it', async () => {
    const file = marker();
    const res = await exec(['--ref', `KEY=${REF}`], markerCommand(file));
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('HTTP 403');
    expect(res.stderr).not.toContain(REAL_KEY);
    expect(existsSync(file)).toBe(false);
  });
});

describe('the command’s environment', () => {
  it('gets the built-in providers’ base URLs and one placeholder, never the key', async () => {
    const res = await exec(
      [
        '--device-dir',
        world.keys,
        '--broker',
        `openai=${REF}`,
        '--broker',
        `anthropic=${REF}`,
        '--broker',
        `gemini=${REF}`,
      ],
      [process.execPath, '-e', `${PROBE}`],
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).not.toContain(REAL_KEY);
    const { env } = JSON.parse(res.stdout);
    const port = /^http:\/\/127\.0\.0\.1:([0-9]+)\/openai\/v1$/.exec(env.OPENAI_BASE_URL)?.[1];
    expect(port).toBeDefined();
    expect(env.ANTHROPIC_BASE_URL).toBe(`http://127.0.0.1:${port}/anthropic`);
    expect(env.GOOGLE_GEMINI_BASE_URL).toBe(`http://127.0.0.1:${port}/gemini`);
    const placeholder = env.OPENAI_API_KEY;
    expect(placeholder).toMatch(/^apbk_[A-Za-z0-9_-]{43}$/);
    for (const name of ['ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'GOOGLE_API_KEY']) {
      expect(env[name]).toBe(placeholder);
    }
  });

  it('gets a new placeholder for every exec', async () => {
    const providers = writeProviders(join(tmp.dir, 'p.json'), upstream.origin, cert.cert);
    const args = [
      '--device-dir',
      world.keys,
      '--broker',
      `custom=${REF}`,
      '--broker-providers',
      providers,
    ];
    const [a, b] = [
      await exec(args, [process.execPath, '-e', PROBE]),
      await exec(args, [process.execPath, '-e', PROBE]),
    ];
    expect(JSON.parse(a.stdout).status).toBe(200);
    expect(JSON.parse(a.stdout).env.CUSTOM_API_KEY).not.toBe(
      JSON.parse(b.stdout).env.CUSTOM_API_KEY,
    );
  });
});

describe('TLS verification', () => {
  it('refuses the upstream’s own certificate without its ca_file (the default trust store)', async () => {
    const direct = await new Promise<string>((resolve) => {
      get(`${upstream.origin}/v1/models`, (res) => resolve(`HTTP ${res.statusCode}`)).on(
        'error',
        (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'),
      );
    });
    expect(direct).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    const providers = writeProviders(join(tmp.dir, 'no-ca.json'), upstream.origin, null);
    const before = upstream.seen.length;
    const execTmp = join(tmp.dir, 'exec-tmp');
    mkdirSync(execTmp, { recursive: true, mode: 0o700 });
    const res = await exec(
      ['--device-dir', world.keys, '--broker', `custom=${REF}`, '--broker-providers', providers],
      [process.execPath, '-e', PROBE],
    );
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).status).toBe(502);
    expect(upstream.seen.length).toBe(before); // the TLS handshake failed: no request arrived
    expect(res.stderr).toMatch(/broker: custom GET \/custom\/v1\/models 502 /);
  });
});
