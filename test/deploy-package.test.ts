/**
 * What `firebase deploy` uploads runs on its own. firebase-tools uploads `functions/` alone,
 * minus the `ignore` globs of firebase.json, and Cloud Build installs it with `npm ci` from its
 * package-lock.json. This suite makes that upload in a temporary directory far from the
 * repository (so nothing can resolve into the repository's node_modules), installs it the way
 * Cloud Build does, and serves the function from that copy alone with the Functions Framework,
 * over the Firestore emulator.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChild, waitForHttp, type Child } from './helpers/child.js';
import { killLiveProcesses, runProcess } from './helpers/cli-process.js';
import {
  freePort,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from './helpers/firestore-emulator.js';
import { BRIDGE_KEY } from './helpers/service.js';
import { generateSigningKeysText } from '../functions/src/adapters/local-signer.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const frameworkBin = join(dirname(require.resolve('@google-cloud/functions-framework')), 'main.js');
const firebaseJson = JSON.parse(readFileSync(join(root, 'firebase.json'), 'utf8'));
const functionsConfig = firebaseJson.functions[0] as {
  source: string;
  ignore: string[];
  runtime: string;
};

/** firebase-tools' ignore globs, as they apply to the top of the source directory. */
function ignored(name: string): boolean {
  return functionsConfig.ignore.some((glob) =>
    glob.startsWith('*') ? name.endsWith(glob.slice(1)) : name === glob,
  );
}

let staged: string;
let emulator: FirestoreEmulator;
let fn: Child | undefined;
let url: string;

/** Runs npm (the machine's, as Cloud Build runs its own) in `cwd`, with a deadline. */
function npm(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return runProcess('npm', args, {
    cwd,
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      npm_config_update_notifier: 'false',
    },
    timeoutMs: 180_000,
  }).then((run) => ({ code: run.code, output: run.stdout + run.stderr }));
}

beforeAll(async () => {
  staged = mkdtempSync(join(tmpdir(), 'agentpack-deploy-'));
  const source = join(root, functionsConfig.source);
  for (const name of readdirSync(source)) {
    if (!ignored(name)) cpSync(join(source, name), join(staged, name), { recursive: true });
  }
  // As Cloud Build: a clean install from the lockfile, production dependencies only. The npm
  // cache already holds every tarball the root install fetched, with the same integrity.
  const install = await npm(['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund'], staged);
  if (install.code !== 0) throw new Error(`npm ci of the upload failed:\n${install.output}`);
  emulator = await startFirestoreEmulator();
  const port = await freePort();
  fn = startChild(
    process.execPath,
    [frameworkBin, '--target=identity', `--source=${staged}`, `--port=${port}`],
    {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      FIRESTORE_EMULATOR_HOST: emulator.host,
      GCLOUD_PROJECT: 'demo-agentpack-deploy',
      AGENTPACK_BRIDGE_KEYS: BRIDGE_KEY,
      AGENTPACK_SECRETS_KEK: randomBytes(32).toString('base64url'),
      AGENTPACK_DIGEST_KEY: randomBytes(32).toString('base64url'),
      AGENTPACK_ISSUER_URL: 'https://identity.example.test',
      AGENTPACK_SIGNING_KEY: generateSigningKeysText(),
      NODE_ENV: 'production',
    },
  );
  url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, fn);
}, 240_000);

afterAll(async () => {
  await killLiveProcesses();
  await fn?.stop();
  await emulator?.stop();
  if (staged !== undefined) rmSync(staged, { recursive: true, force: true });
});

describe('the deploy upload (functions/ alone)', () => {
  it('names a supported runtime, and the Node major the tests run on', () => {
    expect(functionsConfig.runtime).toBe('nodejs24');
    const pkg = JSON.parse(readFileSync(join(root, 'functions/package.json'), 'utf8'));
    expect(pkg.engines.node).toBe('24');
    expect(process.versions.node.split('.')[0]).toBe('24');
  });

  it('holds the bundle, its package.json and its lockfile, and no sources', () => {
    const names = readdirSync(staged);
    expect(names).toEqual(expect.arrayContaining(['dist', 'package.json', 'package-lock.json']));
    expect(names).not.toContain('src');
    expect(names).not.toContain('lib');
    const pkg = JSON.parse(readFileSync(join(staged, 'package.json'), 'utf8'));
    expect(pkg.main).toBe('dist/index.js');
    expect(existsSync(join(staged, pkg.main))).toBe(true);
  });

  it('imports nothing but node: and its own declared dependencies', () => {
    const pkg = JSON.parse(readFileSync(join(staged, 'package.json'), 'utf8'));
    const declared = new Set(Object.keys(pkg.dependencies));
    const undeclared: string[] = [];
    let seen = 0;
    for (const file of readdirSync(join(staged, 'dist')).filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(join(staged, 'dist', file), 'utf8');
      const specs = [
        ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s*"([^"]+)";/gms),
        ...text.matchAll(/^\s*import\s*"([^"]+)";/gm),
        ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
      ].map((m) => m[1]!);
      // A chunk of pure shared code (the store port's tables) may import nothing at all.
      seen += specs.length;
      for (const spec of specs.filter((s) => !s.startsWith('.'))) {
        if (spec.startsWith('node:')) continue;
        const name = spec.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : spec.split('/')[0]!;
        // The embedded store's chunk is loaded only with AGENTPACK_STORE=sqlite, never on
        // Cloud Functions (the configuration there is firestore): it may name better-sqlite3.
        if (name === 'better-sqlite3' && file.startsWith('sqlite-store-')) continue;
        if (!declared.has(name)) undeclared.push(`${file}: ${spec}`);
      }
    }
    expect(seen).toBeGreaterThan(0);
    expect(undeclared).toEqual([]);
    expect(readFileSync(join(staged, 'dist/index.js'), 'utf8')).not.toContain(
      '@agentpack-identity/',
    );
  });

  it('installs exactly the versions the repository locked and tested', () => {
    const rootLock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const lock = JSON.parse(readFileSync(join(staged, 'package-lock.json'), 'utf8'));
    for (const name of ['firebase-admin', 'firebase-functions', '@google-cloud/kms', 'zod']) {
      const installed = JSON.parse(
        readFileSync(join(staged, 'node_modules', name, 'package.json'), 'utf8'),
      );
      // What the service resolves in the repository: its own nested copy first, else the root's.
      const tested =
        rootLock.packages[`functions/node_modules/${name}`] ??
        rootLock.packages[`node_modules/${name}`];
      expect(installed.version).toBe(tested.version);
      expect(lock.packages[`node_modules/${name}`].integrity).toBe(tested.integrity);
    }
  });

  it('serves the function from the copy: agents, keys and secrets on Firestore', async () => {
    const post = async (path: string, body: unknown, headers: Record<string, string>) => {
      const res = await fetch(url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const bridge = { 'x-agentpack-key': BRIDGE_KEY };
    expect(
      (await post('/agents/create', { display_name: 'D', agent_id: 'deployed' }, bridge)).status,
    ).toBe(201);
    const issued = await post('/device/issue', { agent_id: 'deployed' }, bridge);
    expect(issued.status).toBe(201);
    const dk = { 'x-agentpack-device-key': issued.body.device_key };
    expect((await post('/secrets/put', { name: 'k', value: 'from-the-copy' }, dk)).status).toBe(
      200,
    );
    expect((await post('/secrets/get', { name: 'k' }, dk)).body.value).toBe('from-the-copy');
    expect((await post('/agents/get', {}, { 'x-agentpack-key': 'x'.repeat(40) })).status).toBe(401);
  });
});
