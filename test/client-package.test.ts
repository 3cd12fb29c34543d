/**
 * The client as a device without this repository gets it: `npm pack` in packages/client (its
 * prepack builds it), the tarball installed into an empty folder far from the repository (so
 * nothing resolves into the workspace), its types checked there by tsc against a consumer file
 * with no Node or DOM typings, and then a put/get — by a device key, and sealed by an enrolled
 * device — through the installed package in a child Node process, against a running service.
 * A second child blocks every `node:` import the package makes, and the client still works
 * (the portable crypto path), as it must on runtimes without node:crypto.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLiveProcesses, runProcess } from './helpers/cli-process.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const clientDir = join(root, 'packages/client');
const tsc = join(root, 'node_modules/typescript/bin/tsc');

let work: string;
let consumer: string;
let svc: TestService;

const env = () => ({
  PATH: process.env['PATH'],
  HOME: process.env['HOME'],
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
});

async function run(
  command: string,
  args: string[],
  cwd: string,
  extraEnv: Record<string, string> = {},
) {
  const result = await runProcess(command, args, {
    cwd,
    env: { ...env(), ...extraEnv },
    timeoutMs: 240_000,
  });
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'agentpack-client-pack-'));
  consumer = join(work, 'device');
  await run('mkdir', ['-p', consumer], work);
  const pack = await run('npm', ['pack', '--pack-destination', work], clientDir);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  expect(tarball, pack.stdout + pack.stderr).toBe('agentpack-identity-client-0.1.0.tgz');
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'a-device', version: '1.0.0', private: true, type: 'module' }),
  );
  // The dependencies come from the npm cache (the repository's install filled it with every
  // package of its lockfile, these included); from the registry only if the cache lacks one.
  const install = ['install', '--no-audit', '--no-fund', join(work, tarball!)];
  await run('npm', [...install, '--offline'], consumer).catch(() =>
    run('npm', [...install, '--prefer-offline', '--fetch-timeout=60000'], consumer),
  );
  svc = await startTestService();
}, 600_000);

afterEach(async () => {
  await killLiveProcesses();
});

afterAll(async () => {
  await svc?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the client tarball', () => {
  it('ships only lib, README and package.json, and installs nothing of the service', () => {
    const installed = join(consumer, 'node_modules/@agentpack-identity/client');
    expect(readdirSync(installed).sort()).toEqual(['README.md', 'lib', 'package.json']);
    const modules = readdirSync(join(consumer, 'node_modules'));
    for (const banned of ['better-sqlite3', 'firebase-admin', 'firebase-functions']) {
      expect(modules).not.toContain(banned);
    }
    // The workspace protocol package is inlined, never a dependency.
    expect(existsSync(join(consumer, 'node_modules/@agentpack-identity/protocol'))).toBe(false);
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies).sort()).toEqual([
      '@noble/curves',
      '@noble/hashes',
      'tweetnacl',
      'zod',
    ]);
    // The portable entry imports no node: module and names no Buffer.
    const bundle = readFileSync(join(installed, 'lib/index.js'), 'utf8');
    expect(bundle).not.toMatch(/from\s*["']node:/);
    expect(bundle).not.toMatch(/(?<!globalThis\.)\bBuffer\b/);
  });

  it('type-checks a consumer with tsc, strict, without Node or DOM typings', async () => {
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022'],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['consumer.ts', 'url.d.ts'],
      }),
    );
    // zod's own declarations name the global URL, which a real project has from its DOM or Node
    // typings; declared here alone, so that nothing else of those typings can be leaned on.
    writeFileSync(
      join(consumer, 'url.d.ts'),
      'declare class URL { constructor(url: string); readonly href: string; }\n',
    );
    writeFileSync(
      join(consumer, 'consumer.ts'),
      `import {
  AgentpackError,
  createClient,
  verifyCapabilityToken,
  verifyRunToken,
  type Credential,
  type RpcInput,
  type SecretValue,
} from '@agentpack-identity/client';

const credentials: Credential[] = [
  { kind: 'bridge', key: 'k' },
  { kind: 'device', deviceKey: 'apdk_x', delegation: 'dg_x' },
  { kind: 'enrolled', deviceKey: 'apdk_x', signingSeed: new Uint8Array(32), sealingKey: 'base64url' },
  { kind: 'run', runId: 'run_x', key: new Uint8Array(32) },
  { kind: 'token', token: 'a.b.c' },
];

export async function use(url: string): Promise<number> {
  const client = createClient({ url, credential: credentials[1], cache: { maxAgeMs: 60_000 } });
  const secret: SecretValue = await client.secrets.get('openai_key', { seal: true });
  const value: string = secret.value;
  const version: number = secret.version;
  const written = await client.secrets.put('openai_key', 'v', { cas: version });
  const request: RpcInput<'runs/spawn'> = { task: 't', scope: ['secrets/get'], ttl_seconds: 60, public_key: 'k' };
  const spawned = await client.runs.spawn(request);
  const lineage: string[] = spawned.lineage;
  const { keys } = await client.wellKnown.jwks();
  const claims = await verifyRunToken(spawned.token, { jwks: { keys }, issuer: url, audience: url });
  const cap = await verifyCapabilityToken('t', { jwks: { keys }, issuer: 'i', audience: 'a' });
  // @ts-expect-error value must be a string: the request type is the service's schema
  await client.secrets.put({ name: 'n', value: 42 });
  // @ts-expect-error an RPC the service does not have
  client.secrets.rotate;
  try {
    await client.agents.get();
  } catch (error) {
    if (error instanceof AgentpackError) return error.status + error.code.length;
  }
  client.cache.invalidate('openai_key');
  return value.length + written.version + lineage.length + claims.exp + cap.scope.length;
}
`,
    );
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], consumer);
  });

  it('puts and gets through the installed client in a child Node process: a device key, and sealed by an enrolled device', async () => {
    await svc.post('/agents/create', { display_name: 'device', agent_id: 'agent-p' }, svc.bridge);
    const deviceKey = (await svc.post('/device/issue', { agent_id: 'agent-p' }, svc.bridge)).body
      .device_key;
    writeFileSync(
      join(consumer, 'run.mjs'),
      `import { createClient, enrollDevice } from '@agentpack-identity/client';
const url = process.env.AGENTPACK_URL;
const bridge = createClient({ url, credential: { kind: 'bridge', key: process.env.BRIDGE_KEY } });
const device = createClient({ url, credential: { kind: 'device', deviceKey: process.env.DEVICE_KEY } });
const put = await device.secrets.put('openai_key', process.env.VALUE);
const got = await device.secrets.get('openai_key');
const { code } = await bridge.device.enrollments.create({ agent_id: 'agent-p' });
const { credential } = await enrollDevice({ url, code });
const enrolled = createClient({ url, credential });
const sealed = await enrolled.secrets.get('openai_key');
let refused = null;
try { await bridge.secrets.get('openai_key'); } catch (e) { refused = { code: e.code, status: e.status, reason: e.details?.reason }; }
console.log(JSON.stringify({ put, got, sealed: sealed.value, refused }));
`,
    );
    for (const [script, value, preload] of [
      ['run.mjs', 'sk-from-the-tarball ✓', []],
      ['run.mjs', 'sk-portable ✓', ['--import', './no-node-builtins.mjs']],
    ] as const) {
      writeFileSync(
        join(consumer, 'no-node-builtins.mjs'),
        `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('node:') && (context.parentURL ?? '').includes('/@agentpack-identity/client/')) {
    process.stderr.write('blocked ' + specifier + '\\\\n');
    throw new Error('no ' + specifier + ' on this runtime');
  }
  return next(specifier, context);
}\`));
`,
      );
      const result = await run(process.execPath, [...preload, script], consumer, {
        AGENTPACK_URL: svc.url,
        BRIDGE_KEY,
        DEVICE_KEY: deviceKey,
        VALUE: value,
      });
      const out = JSON.parse(result.stdout.trim());
      expect(out.put).toMatchObject({ name: 'openai_key' });
      expect(out.got).toMatchObject({ name: 'openai_key', value, version: out.put.version });
      expect(out.sealed).toBe(value);
      expect(out.refused).toEqual({ code: 'permission_denied', status: 403, reason: 'write_only' });
      if (preload.length > 0) expect(result.stderr).toContain('blocked node:crypto');
      else expect(result.stderr).toBe('');
    }
  });
});
