/**
 * The operator CLI as operators run it: the built launcher (`node packages/cli/bin/agentpack-identity.js`)
 * as a child process. Needs `npm run build` first (as `npm test` does). Covers help, exit codes
 * and one-line reasons, the 0600 key file, minted tokens that our verifier accepts, and
 * `--register` against a recording HTTP server on loopback.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openKmsKeyring } from '../functions/src/adapters/kms-keyring.js';
import { localKeyring } from '../functions/src/adapters/local-keyring.js';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { openValue, recordAad, sealValue } from '../functions/src/core/envelope.js';
import type { Keyring } from '../functions/src/ports/keyring.js';
import { loadPinnedKeys } from '../functions/src/tokens/pinned-keys.js';
import { createTokenVerifier } from '../functions/src/tokens/verify.js';
import { startFakeKms, type FakeKms } from './helpers/fake-kms.js';
import { CLI_BIN, killLiveProcesses, runNode, track } from './helpers/cli-process.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = CLI_BIN;

// Whatever a failed or timed-out test left running ends here, by process group.
afterEach(killLiveProcesses);
const BRIDGE = 'test-bridge-key-for-the-cli-0123456789abcdef';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cli = (args: string[], env: Record<string, string> = {}) => runNode(args, env);

/** Exactly one line on stderr, prefixed with the program's name. */
const ONE_LINE = /^agentpack-identity: [^\n]+\n$/;

const tmp = tempDir('agentpack-cli-');
let keyFile: string;
let publicJwk: Record<string, string>;
let privateD: string;

function verifierFor(issuer = 'agentpack-identity', audience = 'agentpack') {
  return createTokenVerifier({
    keys: loadPinnedKeys(JSON.stringify({ keys: [publicJwk] })),
    issuer,
    audience,
    maxTtlSeconds: 900,
    cacheSize: 0,
  });
}

beforeAll(async () => {
  if (!existsSync(join(root, 'packages/cli/lib/main.js'))) {
    throw new Error('packages/cli/lib is not built: run npm run build before these tests');
  }
  keyFile = join(tmp.dir, 'signing-key.json');
  const res = await cli(['keys', 'generate', '--out', keyFile, '--kid', 'cli-test-key']);
  expect(res.code).toBe(0);
  publicJwk = JSON.parse(res.stdout);
  privateD = JSON.parse(readFileSync(keyFile, 'utf8')).d;
});
afterAll(() => tmp.remove());

describe('help', () => {
  it('prints the top-level usage with --help, -h and help', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const res = await cli([flag]);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('agentpack-identity keys generate --out FILE');
      expect(res.stdout).toContain('agentpack-identity token mint --key FILE --sub AGENT');
      expect(res.stdout).toContain('agentpack-identity secrets rewrap [--data-dir DIR]');
      expect(res.stderr).toBe('');
    }
  });

  it.each([
    [['keys', '--help'], 'keys generate --out FILE'],
    [['keys', 'generate', '--help'], 'mode\n0600'],
    [['token', '--help'], 'token mint --key FILE'],
    [['token', 'mint', '--help'], '--register URL'],
    [['token', 'mint', '--sub', 'x', '-h'], '--scope LIST'],
    [['secrets', '--help'], 'secrets rewrap [--data-dir DIR]'],
    [['secrets', 'rewrap', '--help'], '--after ID'],
  ])('%j prints that command’s help and exits 0', async (args, text) => {
    const res = await cli(args);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^usage: agentpack-identity /);
    expect(res.stdout).toContain(text);
  });

  it('with no arguments prints the usage on stderr and exits 2', async () => {
    const res = await cli([]);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('usage:');
  });
});

describe('bad command lines exit 2 with one line on stderr', () => {
  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['keys'], /keys: missing command/],
    [['keys', 'rotate'], /keys: unknown command "rotate"/],
    [['token'], /token: missing command/],
    [['keys', 'generate'], /--out is required/],
    [['keys', 'generate', '--out'], /--out/],
    [['keys', 'generate', '--out', 'a', '--out', 'b'], /--out given more than once/],
    [['keys', 'generate', '--out', 'a', 'extra'], /extra/],
    [['token', 'mint', '--bogus', '1'], /--bogus/],
    [['token', 'mint', '--key', 'k', '--sub', 'agent-a'], /--scope is required/],
    [['token', 'mint', '--key', 'k', '--scope', 'secrets/get'], /--sub is required/],
    [['token', 'mint', '--key', 'k', '--sub', 'agent-a', '--scope', 'a,,b'], /empty entry/],
    [
      ['token', 'mint', '--key', 'k', '--sub', 'agent-a', '--scope', 'secrets/get', '--ttl', '5m'],
      /--ttl/,
    ],
    [['secrets'], /secrets: missing command/],
    [['secrets', 'purge'], /secrets: unknown command "purge"/],
    [['secrets', 'rewrap', '--batch', '0'], /--batch must be a whole number from 1 to 1000/],
    [['secrets', 'rewrap', '--batch', 'ten'], /--batch must be/],
    [['secrets', 'rewrap', '--batch', '1001'], /--batch must be/],
    [['secrets', 'rewrap', '--after', ''], /--after is empty/],
    [['secrets', 'rewrap', '--bogus', '1'], /--bogus/],
  ])('%j', async (args, message) => {
    const res = await cli(args);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
  });
});

describe('keys generate', () => {
  it('wrote a 0600 private JWK and printed only its public half', () => {
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(keyFile, 'utf8'));
    expect(file).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: 'cli-test-key' });
    expect(file.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(publicJwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: file.x,
      kid: 'cli-test-key',
      alg: 'EdDSA',
      use: 'sig',
    });
  });

  it('never prints the private key, and refuses to overwrite an existing file', async () => {
    const out = join(tmp.dir, 'second.json');
    const first = await cli(['keys', 'generate', '--out', out]);
    expect(first.code).toBe(0);
    const content = readFileSync(out, 'utf8');
    const { d } = JSON.parse(content);
    expect(first.stdout).not.toContain('"d"');
    expect(first.stdout + first.stderr).not.toContain(d);
    expect(first.stderr).toContain(out);
    const again = await cli(['keys', 'generate', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(ONE_LINE);
    expect(again.stderr).toContain('already exists');
    expect(again.stdout).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(content);
  });

  it('fails with one line when the file cannot be written', async () => {
    const res = await cli(['keys', 'generate', '--out', join(tmp.dir, 'missing-dir', 'k.json')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('ENOENT');
  });
});

describe('token mint', () => {
  const base = [
    'token',
    'mint',
    '--sub',
    'agent-ops',
    '--scope',
    'secrets/get:openai_key,secrets/list',
  ];

  it('prints a token our verifier accepts, 300 s by default', async () => {
    const before = Math.floor(Date.now() / 1000);
    const res = await cli([...base, '--key', keyFile]);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const verdict = verifierFor().verify(res.stdout.trim(), Date.now());
    if (!verdict.ok) throw new Error(`refused: ${verdict.reason}`);
    expect(verdict.kid).toBe('cli-test-key');
    expect(verdict.claims).toMatchObject({
      iss: 'agentpack-identity',
      aud: 'agentpack',
      sub: 'agent-ops',
      scope: ['secrets/get:openai_key', 'secrets/list'],
    });
    expect(verdict.claims.iat).toBeGreaterThanOrEqual(before);
    expect(verdict.claims.exp - verdict.claims.iat).toBe(300);
    expect(res.stdout).not.toContain(privateD);
  });

  it('takes --ttl, --iss and --aud, and issuer/audience defaults from the environment', async () => {
    const flags = await cli([
      ...base,
      '--key',
      keyFile,
      '--ttl',
      '60',
      '--iss',
      'iss-x',
      '--aud',
      'aud-x',
    ]);
    expect(flags.code).toBe(0);
    const one = verifierFor('iss-x', 'aud-x').verify(flags.stdout.trim(), Date.now());
    expect(one.ok && one.claims.exp - one.claims.iat).toBe(60);
    const env = await cli([...base, '--key', keyFile], {
      AGENTPACK_ISSUER: 'env-iss',
      AGENTPACK_AUDIENCE: 'env-aud',
    });
    expect(env.code).toBe(0);
    expect(verifierFor('env-iss', 'env-aud').verify(env.stdout.trim(), Date.now()).ok).toBe(true);
  });

  const badKey = (name: string, content: string, mode = 0o600) => {
    const file = join(tmp.dir, name);
    writeFileSync(file, content, { mode });
    return file;
  };

  it.each([
    [
      'a sub outside the grammar',
      ['--sub', 'Agent!', '--scope', 'secrets/get'],
      /sub must be an agent id/,
    ],
    [
      'an RPC a token cannot grant',
      ['--sub', 'agent-a', '--scope', 'agents/create'],
      /cannot be granted/,
    ],
    [
      'a ttl of 0',
      [...base.slice(2), '--ttl', '0'],
      /ttl must be a whole number of seconds from 1/,
    ],
    ['a ttl above a day', [...base.slice(2), '--ttl', '86401'], /ttl/],
  ])('fails on %s (exit 1, one line)', async (_name, extra, message) => {
    const res = await cli(['token', 'mint', '--key', keyFile, ...extra]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
  });

  it('refuses key files it should not use, never echoing their content', async () => {
    const secretish = 'SECRET-CONTENT-THAT-MUST-NOT-BE-ECHOED';
    const privateJwk = readFileSync(keyFile, 'utf8');
    const cases: Array<[string, RegExp]> = [
      [join(tmp.dir, 'absent.json'), /cannot read .*ENOENT/],
      [
        badKey('world-readable.json', privateJwk, 0o644),
        /readable by others \(mode 644\): chmod 600/,
      ],
      [badKey('not-json.json', `{"d": "${secretish}"`), /is not a JSON private key/],
      [badKey('public.json', JSON.stringify(publicJwk)), /no private part "d"/],
      [tmp.dir, /is not a file/],
    ];
    for (const [file, message] of cases) {
      const res = await cli([...base, '--key', file]);
      expect(res.code, file).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(ONE_LINE);
      expect(res.stderr).toMatch(message);
      expect(res.stderr).not.toContain(secretish);
      expect(res.stderr).not.toContain(privateD);
    }
  });
});

describe('token mint --register', () => {
  interface Recorded {
    method: string | undefined;
    url: string | undefined;
    headers: IncomingHttpHeaders;
    body: string;
  }
  let server: Server;
  let url: string;
  const requests: Recorded[] = [];
  let answer: { status: number; body: string } = { status: 201, body: '{}' };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests.push({ method: req.method, url: req.url, headers: req.headers, body });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const mintArgs = (target: string) => [
    'token',
    'mint',
    '--key',
    keyFile,
    '--sub',
    'agent-reg',
    '--scope',
    'secrets/get',
    '--register',
    target,
  ];

  it('records {jti, sub, scope, iat, exp, kid} with the bridge key, never the token, then prints it', async () => {
    requests.length = 0;
    answer = { status: 201, body: '{"jti":"x"}' };
    const res = await cli(mintArgs(url), { AGENTPACK_BRIDGE_KEY: BRIDGE });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const token = res.stdout.trim();
    const verdict = verifierFor().verify(token, Date.now());
    if (!verdict.ok) throw new Error(`refused: ${verdict.reason}`);
    expect(requests).toHaveLength(1);
    const [req] = requests as [Recorded];
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/tokens/register');
    expect(req.headers['x-agentpack-key']).toBe(BRIDGE);
    expect(req.headers['content-type']).toBe('application/json');
    const { jti, sub, scope, iat, exp } = verdict.claims;
    expect(JSON.parse(req.body)).toEqual({ jti, sub, scope, iat, exp, kid: 'cli-test-key' });
    expect(req.body).not.toContain(token);
    for (const segment of token.split('.')) expect(req.body).not.toContain(segment);
  });

  it('uses the first of AGENTPACK_BRIDGE_KEYS and keeps a base path', async () => {
    requests.length = 0;
    answer = { status: 201, body: '{}' };
    const res = await cli(mintArgs(`${url}/base/`), {
      AGENTPACK_BRIDGE_KEYS: ` ${BRIDGE}-1 , ${BRIDGE}-2`,
    });
    expect(res.code).toBe(0);
    expect(requests.map((r) => [r.url, r.headers['x-agentpack-key']])).toEqual([
      ['/base/tokens/register', `${BRIDGE}-1`],
    ]);
  });

  it('fails with the service’s reason and prints no token when the answer is not 201', async () => {
    requests.length = 0;
    answer = {
      status: 409,
      body: JSON.stringify({
        error: { code: 'already_exists', message: 'jti\nalready registered' },
      }),
    };
    const res = await cli(mintArgs(url), { AGENTPACK_BRIDGE_KEY: BRIDGE });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain(
      'registration failed: HTTP 409 already_exists: jti already registered',
    );
    expect(res.stderr).not.toContain(BRIDGE);
    expect(requests).toHaveLength(1);
    answer = { status: 200, body: 'ok' };
    const ok200 = await cli(mintArgs(url), { AGENTPACK_BRIDGE_KEY: BRIDGE });
    expect(ok200.code).toBe(1);
    expect(ok200.stderr).toContain('HTTP 200');
  });

  it.each([
    [
      'no bridge key in the environment',
      () => url,
      {},
      /needs the bridge key in AGENTPACK_BRIDGE_KEY/,
    ],
    [
      'plain http to a non-loopback host',
      () => 'http://identity.example.com',
      { AGENTPACK_BRIDGE_KEY: BRIDGE },
      /loopback addresses only/,
    ],
    [
      'a URL with a query',
      () => `${url}/?x=1`,
      { AGENTPACK_BRIDGE_KEY: BRIDGE },
      /no credentials, query or fragment/,
    ],
    ['not a URL', () => 'not a url', { AGENTPACK_BRIDGE_KEY: BRIDGE }, /is not a URL/],
    [
      'a file: URL',
      () => 'file:///etc/passwd',
      { AGENTPACK_BRIDGE_KEY: BRIDGE },
      /must be http\(s\)/,
    ],
  ])('refuses %s before sending anything', async (_name, target, env, message) => {
    requests.length = 0;
    const res = await cli(mintArgs(target()), env as Record<string, string>);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
    expect(requests).toHaveLength(0);
  });

  it('fails with one line when the service cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const res = await cli(mintArgs(`http://127.0.0.1:${port}`), { AGENTPACK_BRIDGE_KEY: BRIDGE });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(/registration failed: cannot reach .*ECONNREFUSED/);
  });
});

describe('secrets rewrap', () => {
  let kms: FakeKms;
  let keyring: Keyring & { close(): Promise<void> };
  let kmsEnv: Record<string, string>;
  beforeAll(async () => {
    kms = await startFakeKms();
    keyring = await openKmsKeyring({
      keyName: kms.keyName,
      apiEndpoint: '127.0.0.1',
      port: kms.port,
      insecure: true,
    });
    kmsEnv = {
      AGENTPACK_KMS_KEY: kms.keyName,
      AGENTPACK_KMS_ENDPOINT: `127.0.0.1:${kms.port}`,
      AGENTPACK_KMS_INSECURE: 'true',
    };
  });
  afterAll(async () => {
    await keyring?.close();
    await kms?.stop();
  });

  const VALUES = ['sk-one', 'sk-two', 'sk-three'];

  /** A data dir whose store holds three versions sealed under `ring`. */
  async function dataDirWith(name: string, ring: Keyring): Promise<string> {
    const dir = join(tmp.dir, name);
    const store = openSqliteStore({ file: join(dir, 'identity.sqlite') });
    try {
      for (const [i, value] of VALUES.entries()) {
        const version = i + 1;
        const sealed = await sealValue(ring, value, recordAad('agent-a', 'api_key', version));
        await store.transact(async (tx) =>
          tx.set('secret_versions', `agent-a:api_key:${version}`, {
            agent_id: 'agent-a',
            name: 'api_key',
            version,
            created_at: '2026-01-01T00:00:00.000Z',
            ...sealed,
          }),
        );
      }
    } finally {
      await store.close();
    }
    return dir;
  }

  it('rewraps under the new primary with no bridge key, prints one JSON line, then finds nothing to do', async () => {
    const dir = await dataDirWith('rewrap-kms', keyring);
    const newRef = kms.rotate();
    const first = await cli(['secrets', 'rewrap', '--data-dir', dir, '--batch', '2'], kmsEnv);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^\{[^\n]*\}\n$/);
    expect(JSON.parse(first.stdout)).toEqual({
      scanned: 3,
      rewrapped: 3,
      skipped: 0,
      last_id: 'agent-a:api_key:3',
    });
    const second = await cli(['secrets', 'rewrap'], { ...kmsEnv, AGENTPACK_DATA_DIR: dir });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ rewrapped: 0, skipped: 3 });
    const resumed = await cli(
      ['secrets', 'rewrap', '--data-dir', dir, '--after', 'agent-a:api_key:2'],
      kmsEnv,
    );
    expect(JSON.parse(resumed.stdout)).toEqual({
      scanned: 1,
      rewrapped: 0,
      skipped: 1,
      last_id: 'agent-a:api_key:3',
    });

    const store = openSqliteStore({ file: join(dir, 'identity.sqlite') });
    try {
      const docs = await store.scan('secret_versions', null, 10);
      expect(docs.map((d) => d.doc.kek_ref)).toEqual([newRef, newRef, newRef]);
      for (const { doc } of docs) {
        const value = await openValue(keyring, doc, recordAad('agent-a', 'api_key', doc.version));
        expect(value).toBe(VALUES[doc.version - 1]);
      }
      const events = (await store.auditEvents(100)).filter((e) => e.action === 'secret.rewrap');
      expect(events).toHaveLength(3);
      expect(events[0]!.actor).toEqual({ kind: 'maintenance' });
    } finally {
      await store.close();
    }
    for (const out of [first, second, resumed]) {
      for (const value of VALUES) expect(out.stdout + out.stderr).not.toContain(value);
    }
  });

  it('with the local key file, finds every version already under it', async () => {
    const dir = join(tmp.dir, 'rewrap-local');
    mkdirSync(dir, { recursive: true });
    const kek = Buffer.alloc(32, 9);
    writeFileSync(join(dir, 'secrets-kek'), `${kek.toString('base64url')}\n`, { mode: 0o600 });
    await dataDirWith('rewrap-local', localKeyring(kek));
    const res = await cli(['secrets', 'rewrap', '--data-dir', dir]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      scanned: 3,
      rewrapped: 0,
      skipped: 3,
      last_id: 'agent-a:api_key:3',
    });
  });

  it('stops with how far it got and one line on stderr when a data key is not under the configured key', async () => {
    const dir = await dataDirWith('rewrap-mismatch', localKeyring(Buffer.alloc(32, 3)));
    const res = await cli(['secrets', 'rewrap', '--data-dir', dir], kmsEnv);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toEqual({ scanned: 0, rewrapped: 0, skipped: 0, last_id: null });
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(
      /rewrap stopped at agent-a:api_key:1: data key was wrapped by local:[0-9a-f]{16}, which is not a version of the configured key/,
    );
  });

  it('refuses a data dir with no store, creating nothing, and a bad KMS key name', async () => {
    const missing = join(tmp.dir, 'no-such-dir');
    const res = await cli(['secrets', 'rewrap', '--data-dir', missing]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain(`no store in ${missing}`);
    expect(existsSync(missing)).toBe(false);
    const bad = await cli(['secrets', 'rewrap', '--data-dir', missing], {
      AGENTPACK_KMS_KEY: 'projects/p/keyRings/r',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(ONE_LINE);
    expect(bad.stderr).toContain('AGENTPACK_KMS_KEY must be projects/');
  });
});

describe('launcher and package bin', () => {
  it('says to build first when lib/ is missing', async () => {
    const dir = join(tmp.dir, 'unbuilt', 'bin');
    mkdirSync(dir, { recursive: true });
    const copy = join(dir, 'agentpack-identity.js');
    copyFileSync(BIN, copy);
    const res = await runNode(['--help'], {}, { script: copy });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('run npm run build first');
  });

  it('is an executable with a node shebang, linked as node_modules/.bin/agentpack-identity', async () => {
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(BIN).mode & 0o111).not.toBe(0);
    const pkg = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ 'agentpack-identity': 'bin/agentpack-identity.js' });
    const linked = join(root, 'node_modules/.bin/agentpack-identity');
    const res = await new Promise<Run>((resolve, reject) => {
      const child = track(
        spawn(linked, ['--help'], {
          env: { PATH: process.env['PATH'] ?? '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      let stdout = '';
      child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr: '' }));
    });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('agentpack-identity token mint');
  });
});
