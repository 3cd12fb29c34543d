/**
 * Workload federation from the CLI, as processes against the real service: trusted issuers and
 * roles put, listed, read and deleted by the operator; `auth exchange` logging a workload in
 * with a Kubernetes-shaped token of a pinned-JWKS issuer (an Ed25519 key made here with jose)
 * and writing the run directory that `run exec` and `run token` then use; the run tokens
 * verified by jose from the service's /.well-known/jwks.json; `run spawn` keeping its token
 * too; and bad command lines and refusals as one line and a non-zero exit, the subject token
 * never in any output. Needs the CLI built (npm run build).
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { RUN_TOKEN_TYP } from '@agentpack-identity/protocol';
import { killLiveProcesses } from './helpers/cli-process.js';
import { operatorHome, runCli } from './helpers/cli-operator.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ONE_LINE = /^agentpack-identity: [^\n]+\n$/;
const ISSUER = 'https://k8s.example';
const AUDIENCE = 'agentpack-k8s';
const SECRET = 'sk-federated-deploy-Qm41';
const mode = (path: string) => statSync(path).mode & 0o777;

afterEach(killLiveProcesses);
const tmp = tempDir('agentpack-cli-federation-');
let service: TestService;
let home: ReturnType<typeof operatorHome>;
let env: Record<string, string>;
let signingKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let jwksFile: string;
let deviceKeyFile: string;
/** Every subject token minted: none may ever show in the CLI's output or the run's files. */
const subjectTokens: string[] = [];

beforeAll(async () => {
  if (!existsSync(join(root, 'packages/cli/lib/commands/auth.js'))) {
    throw new Error('packages/cli/lib is not built: run npm run build before these tests');
  }
  service = await startTestService();
  home = operatorHome(join(tmp.dir, 'home'), BRIDGE_KEY);
  env = home.env({ AGENTPACK_URL: service.url, AGENTPACK_BRIDGE_KEY_FILE: home.bridgeKeyFile });
  // The cluster's signing key: only its public half is pinned at the service.
  const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  signingKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'cluster-1', alg: 'EdDSA', use: 'sig' };
  jwksFile = join(tmp.dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  // The agent the role maps to, with a secret its runs may read.
  await ok(['agents', 'create', '--display-name', 'builder', '--agent-id', 'agent-k8s']);
  deviceKeyFile = join(tmp.dir, 'agent-k8s.device-key');
  await ok(['keys', 'issue', '--agent', 'agent-k8s', '--out', deviceKeyFile]);
  const dk = readFileSync(deviceKeyFile, 'utf8').trim();
  const put = await service.post(
    '/secrets/put',
    { name: 'deploy_key', value: SECRET },
    service.device(dk),
  );
  expect(put.status).toBe(200);
});
afterAll(async () => {
  await service.close();
  tmp.remove();
});

const cli = (args: string[], input?: string, extraEnv: Record<string, string> = {}) =>
  runCli(args, { ...env, ...extraEnv }, input === undefined ? {} : { input });

async function ok(args: string[], input?: string): Promise<any> {
  const res = await cli(args, input);
  expect(res.code, `${args.join(' ')}\n${res.stderr}`).toBe(0);
  return res.stdout.trim() === '' ? null : JSON.parse(res.stdout);
}

/** A projected service-account token (namespace `ns` unless `sub` says else), signed by the cluster's key. */
async function subjectToken(
  options: { sa?: string; sub?: string; aud?: string; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({
    'kubernetes.io': { namespace: 'ns', serviceaccount: { name: options.sa ?? 'builder' } },
  })
    .setProtectedHeader({ alg: 'EdDSA', kid: options.kid ?? 'cluster-1' })
    .setIssuer(ISSUER)
    .setSubject(options.sub ?? `system:serviceaccount:ns:${options.sa ?? 'builder'}`)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(signingKey);
  subjectTokens.push(token);
  return token;
}

function writeToken(name: string, token: string): string {
  const file = join(tmp.dir, name);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

/** Fails when any subject token minted so far shows in `text`. */
function expectNoSubjectToken(text: string) {
  for (const token of subjectTokens) {
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split('.')[2]!);
  }
}

/** Verifies a run token as a downstream service does, from the service's published JWKS. */
function verifyRunToken(token: string, audience: string) {
  const jwks = createRemoteJWKSet(new URL(`${service.url}/.well-known/jwks.json`));
  return jwtVerify(token, jwks, {
    issuer: service.url,
    audience,
    typ: RUN_TOKEN_TYP,
    algorithms: ['ES256'],
  });
}

/** The k8s issuer pinned and the role `k8s-builder` over it (idempotent: both are puts). */
async function k8sRole(): Promise<void> {
  await ok(['issuers', 'put', ISSUER, '--jwks-file', jwksFile]);
  await ok([
    'roles',
    'put',
    'k8s-builder',
    '--issuer',
    ISSUER,
    '--audience',
    AUDIENCE,
    '--bind',
    'sub=system:serviceaccount:ns:*',
    '--agent',
    'agent-k8s',
    '--scope',
    'secrets/get:deploy_key,runs/spawn',
    '--ttl',
    '300',
  ]);
}

function exchangeArgs(out: string, tokenFile: string, extra: string[] = []): string[] {
  return [
    'auth',
    'exchange',
    '--url',
    service.url,
    '--role',
    'k8s-builder',
    '--subject-token-file',
    tokenFile,
    '--out',
    out,
    ...extra,
  ];
}

describe('help', () => {
  it.each([
    [['issuers', '--help'], 'issuers put ISSUER [--jwks-file FILE]'],
    [['issuers', 'put', '--help'], '.well-known/openid-configuration'],
    [['roles', '--help'], 'roles put ROLE --issuer ISSUER'],
    [['roles', 'put', '--help'], 'VALUE never starts with "*"'],
    [['auth', '--help'], 'auth exchange --url URL --role ROLE'],
    [['auth', 'exchange', '--help'], 'DIR/run.token'],
    [['run', 'token', '--help'], '/.well-known/jwks.json'],
    [['run', 'spawn', '--help'], 'DIR/run.token'],
  ])('%j prints its help and exits 0', async (args, text) => {
    const res = await cli(args);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^usage: agentpack-identity /);
    expect(res.stdout).toContain(text);
    expect(res.stderr).toBe('');
  });

  it('the top-level help lists the new commands', async () => {
    const res = await cli(['--help']);
    for (const text of [
      'issuers put|list|delete',
      'roles put|get|list|delete',
      'auth exchange --url URL --role ROLE --subject-token-file FILE|- --out DIR',
      'run token --run-dir DIR --audience AUD [--out FILE]',
    ]) {
      expect(res.stdout).toContain(text);
    }
  });
});

describe('issuers and roles', () => {
  it('put, list, get and delete round trip', async () => {
    const pinned = await ok(['issuers', 'put', ISSUER, '--jwks-file', jwksFile]);
    expect(pinned).toMatchObject({ issuer: ISSUER, discovery: false });
    expect(pinned.jwks.keys).toHaveLength(1);
    expect(pinned.jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: 'cluster-1' });
    const discovered = await ok(['issuers', 'put', 'https://token.actions.githubusercontent.com']);
    expect(discovered).toMatchObject({ discovery: true, jwks: null });

    const listed = await ok(['issuers', 'list', '--all']);
    expect(listed.issuers.map((i: any) => i.issuer)).toEqual(
      expect.arrayContaining([ISSUER, 'https://token.actions.githubusercontent.com']),
    );
    expect(listed.next_cursor).toBeNull();
    const table = await cli(['issuers', 'list', '--table']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ISSUER\s+KEYS\s+CREATED\s+UPDATED\n/);
    expect(table.stdout).toMatch(/https:\/\/k8s\.example\s+1 pinned/);
    expect(table.stdout).toMatch(/token\.actions\.githubusercontent\.com\s+discovered/);

    const role = await ok([
      'roles',
      'put',
      'k8s-roundtrip',
      '--issuer',
      ISSUER,
      '--audience',
      `${AUDIENCE},other-aud`,
      '--bind',
      'sub=system:serviceaccount:ns:a',
      '--bind',
      'sub=system:serviceaccount:ns:b',
      '--bind',
      'kubernetes.io/namespace=ns',
      '--agent',
      'agent-k8s',
      '--scope',
      'secrets/get:deploy_key',
      '--ttl',
      '120',
    ]);
    expect(role).toMatchObject({
      role: 'k8s-roundtrip',
      issuer: ISSUER,
      audiences: [AUDIENCE, 'other-aud'],
      bound_claims: {
        sub: ['system:serviceaccount:ns:a', 'system:serviceaccount:ns:b'],
        'kubernetes.io/namespace': 'ns',
      },
      agent_id: 'agent-k8s',
      scope: ['secrets/get:deploy_key'],
      ttl_seconds: 120,
    });
    expect(await ok(['roles', 'get', 'k8s-roundtrip'])).toEqual(role);
    const roles = await ok(['roles', 'list', '--all']);
    expect(roles.roles.map((r: any) => r.role)).toContain('k8s-roundtrip');
    const rolesTable = await cli(['roles', 'list', '--table']);
    expect(rolesTable.stdout).toMatch(/^ROLE\s+ISSUER\s+AGENT\s+AUDIENCES/);
    expect(rolesTable.stdout).toMatch(/k8s-roundtrip\s+https:\/\/k8s\.example\s+agent-k8s/);

    // An issuer a role still names is not deleted.
    const refused = await cli(['issuers', 'delete', ISSUER]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(ONE_LINE);
    expect(refused.stderr).toMatch(/HTTP 409 failed_precondition: a role still trusts this issuer/);

    expect(await ok(['roles', 'delete', 'k8s-roundtrip'])).toEqual({
      role: 'k8s-roundtrip',
      deleted: true,
    });
    const gone = await cli(['roles', 'get', 'k8s-roundtrip']);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(ONE_LINE);
    expect(gone.stderr).toMatch(/HTTP 404 not_found: no such role/);
    expect(await ok(['issuers', 'delete', 'https://token.actions.githubusercontent.com'])).toEqual({
      issuer: 'https://token.actions.githubusercontent.com',
      deleted: true,
    });
    expect(
      (await cli(['issuers', 'delete', 'https://token.actions.githubusercontent.com'])).code,
    ).toBe(3);
  });

  it('a JWKS file holding a private key is refused before anything is sent', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const file = join(tmp.dir, 'private-jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [await exportJWK(pair.privateKey)] }));
    const res = await cli(['issuers', 'put', 'https://private.example', '--jwks-file', file]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(/key #1 of .* is a private key \("d"\): pin only public keys/);
    const listed = await ok(['issuers', 'list', '--all']);
    expect(listed.issuers.map((i: any) => i.issuer)).not.toContain('https://private.example');
  });

  it.each([
    [['issuers', 'put'], /ISSUER is required/],
    [['issuers', 'put', 'has space'], /issuers put: issuer must be printable ASCII/],
    [['issuers', 'put', ISSUER, '--jwks-file', '/nonexistent/jwks.json'], /cannot read/, 1],
    [['roles', 'get', 'Bad Role'], /ROLE: role must match/],
    [['roles', 'put', 'r-one', '--issuer', ISSUER], /--audience is required/],
    [
      [
        'roles',
        'put',
        'r-one',
        '--issuer',
        ISSUER,
        '--audience',
        'a',
        '--bind',
        'no-equals-sign',
        '--agent',
        'agent-k8s',
        '--scope',
        'secrets/get',
        '--ttl',
        '60',
      ],
      /--bind must be CLAIM=VALUE/,
    ],
    [
      [
        'roles',
        'put',
        'r-one',
        '--issuer',
        ISSUER,
        '--audience',
        'a',
        '--bind',
        'sub=*',
        '--agent',
        'agent-k8s',
        '--scope',
        'secrets/get',
        '--ttl',
        '60',
      ],
      /roles put: a bound claim value must not start with \*/,
    ],
    [
      [
        'roles',
        'put',
        'r-one',
        '--issuer',
        ISSUER,
        '--audience',
        'a',
        '--agent',
        'agent-k8s',
        '--scope',
        'secrets/get',
        '--ttl',
        '60',
      ],
      /--bind CLAIM=VALUE is required/,
    ],
    [
      [
        'roles',
        'put',
        'r-one',
        '--issuer',
        ISSUER,
        '--audience',
        'a,,b',
        '--bind',
        'sub=x',
        '--agent',
        'agent-k8s',
        '--scope',
        'secrets/get',
        '--ttl',
        '60',
      ],
      /--audience has an empty entry/,
    ],
    [
      [
        'roles',
        'put',
        'r-one',
        '--issuer',
        ISSUER,
        '--audience',
        'a',
        '--bind',
        'sub=x',
        '--agent',
        'agent-k8s',
        '--scope',
        'secrets/get',
        '--ttl',
        'ten',
      ],
      /--ttl must be a whole number/,
    ],
  ])('bad command line: %j', async (args, message, code = 2) => {
    const res = await cli(args);
    expect(res.code).toBe(code);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
  });
});

describe('auth exchange', () => {
  it('logs a workload in with its token: a run directory that run token and run exec use', async () => {
    await k8sRole();
    const token = await subjectToken();
    const tokenFile = writeToken('sa-token', token);
    const out = join(tmp.dir, 'exchanged');
    const res = await cli(
      exchangeArgs(out, tokenFile, ['--task', 'build app', '--audience', 'https://spawn.example']),
    );
    expect(res.code, res.stderr).toBe(0);
    expectNoSubjectToken(res.stdout + res.stderr);
    const printed = JSON.parse(res.stdout);
    const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(printed).toEqual({
      run_id: info.run_id,
      agent_id: 'agent-k8s',
      scope: ['secrets/get:deploy_key', 'runs/spawn'],
      lineage: [info.run_id],
      expires_at: info.expires_at,
    });
    expect(info).toMatchObject({ agent_id: 'agent-k8s', parent_run_id: null, url: service.url });
    expect(Date.parse(info.expires_at) - Date.parse(info.created_at)).toBe(300_000);

    // The same directory as run spawn writes, plus the run token; all private.
    expect(mode(out)).toBe(0o700);
    expect(readdirSync(out).sort()).toEqual(['run.json', 'run.key', 'run.token']);
    for (const name of ['run.json', 'run.key', 'run.token']) {
      expect(mode(join(out, name))).toBe(0o600);
      expectNoSubjectToken(readFileSync(join(out, name), 'utf8'));
    }
    const spawnToken = readFileSync(join(out, 'run.token'), 'utf8').trim();
    expect(res.stdout + res.stderr).not.toContain(spawnToken);
    const atSpawn = await verifyRunToken(spawnToken, 'https://spawn.example');
    expect(atSpawn.payload).toMatchObject({ sub: 'agent-k8s', run_id: info.run_id });

    // run token: printed on stdout, for the audience asked, verified from the JWKS.
    const printedToken = await cli([
      'run',
      'token',
      '--run-dir',
      out,
      '--audience',
      'https://api.example',
    ]);
    expect(printedToken.code, printedToken.stderr).toBe(0);
    expect(printedToken.stderr).toBe('');
    expect(printedToken.stdout).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const { payload, protectedHeader } = await verifyRunToken(
      printedToken.stdout.trim(),
      'https://api.example',
    );
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: RUN_TOKEN_TYP });
    expect(payload).toMatchObject({
      iss: service.url,
      sub: 'agent-k8s',
      aud: 'https://api.example',
      run_id: info.run_id,
      root_run_id: info.run_id,
      lineage: [info.run_id],
      scope: ['secrets/get:deploy_key', 'runs/spawn'],
    });
    await expect(
      verifyRunToken(printedToken.stdout.trim(), 'https://other.example'),
    ).rejects.toThrow(/aud/);

    // ... or written to a 0600 file, replaced whole when run again; --json gives expires_at.
    const file = join(tmp.dir, 'api.token');
    for (let i = 0; i < 2; i++) {
      const written = await cli([
        'run',
        'token',
        '--run-dir',
        out,
        '--audience',
        'sts.example',
        '--out',
        file,
        '--json',
      ]);
      expect(written.code, written.stderr).toBe(0);
      expect(JSON.parse(written.stdout)).toEqual({ file, expires_at: expect.any(String) });
      expect(mode(file)).toBe(0o600);
      const fromFile = await verifyRunToken(readFileSync(file, 'utf8').trim(), 'sts.example');
      expect(fromFile.payload.run_id).toBe(info.run_id);
      expect(written.stdout).not.toContain(readFileSync(file, 'utf8').trim());
    }
    expect(readdirSync(tmp.dir).filter((n) => n.includes('api.token'))).toEqual(['api.token']);

    // run exec works on the directory: the role's secret reaches the command as a file.
    const exec = await cli([
      'run',
      'exec',
      '--run-dir',
      out,
      '--ref',
      'DEPLOY=agentpack.secret://agent-k8s/deploy_key',
      '--',
      process.execPath,
      '-e',
      'const fs = require("fs"); const v = fs.readFileSync(process.env.AGENTPACK_SECRETS_DIR + "/DEPLOY", "utf8"); process.stdout.write(v === process.argv[1] ? "same" : "different")',
      SECRET,
    ]);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toBe('same');

    // run exec completed the run: it gets no token any more.
    const ended = await cli(['run', 'token', '--run-dir', out, '--audience', 'x']);
    expect(ended.code).toBe(1);
    expect(ended.stdout).toBe('');
    expect(ended.stderr).toMatch(ONE_LINE);
    expect(ended.stderr).toMatch(/\/runs\/token: HTTP 401/);
  });

  it('reads the subject token from stdin with "-"', async () => {
    await k8sRole();
    const token = await subjectToken({ sa: 'stdin-reader' });
    const out = join(tmp.dir, 'from-stdin');
    const res = await cli(exchangeArgs(out, '-', ['--ttl', '60']), `${token}\n`);
    expect(res.code, res.stderr).toBe(0);
    expectNoSubjectToken(res.stdout + res.stderr);
    const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(Date.parse(info.expires_at) - Date.parse(info.created_at)).toBe(60_000);
    // The run token at exchange is for the service's issuer URL by default.
    const { payload } = await verifyRunToken(
      readFileSync(join(out, 'run.token'), 'utf8').trim(),
      service.url,
    );
    expect(payload.run_id).toBe(info.run_id);
  });

  it.each<[string, { role?: string; aud?: string; kid?: string; sub?: string }, RegExp]>([
    [
      'an unknown role',
      { role: 'no-such-role' },
      /HTTP 401 unauthenticated: there is no such role \(reason: unknown_role\)/,
    ],
    ['a token for another audience', { aud: 'someone-else' }, /\(reason: wrong_audience\)/],
    [
      'a service account of another namespace',
      { sub: 'system:serviceaccount:other:builder' },
      /\(reason: claim_mismatch, claim sub\)/,
    ],
    ['a key the issuer does not have', { kid: 'cluster-2' }, /\(reason: bad_signature\)/],
  ])('refuses %s: exit 1, the reason in one line, no run left', async (_what, how, message) => {
    await k8sRole();
    const token = await subjectToken(how);
    const name = `refused-${subjectTokens.length}`;
    const args = exchangeArgs(join(tmp.dir, name), writeToken(`${name}.jwt`, token));
    if (how.role !== undefined) args[args.indexOf('k8s-builder')] = how.role;
    const res = await cli(args);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
    expectNoSubjectToken(res.stdout + res.stderr);
    // The key made for the run is taken away again: no run, no key.
    expect(readdirSync(join(tmp.dir, name))).toEqual([]);
  });

  it.each([
    [
      'no --subject-token-file',
      ['auth', 'exchange', '--url', 'http://127.0.0.1:9', '--role', 'k8s-builder', '--out', 'd'],
      /--subject-token-file is required/,
      2,
    ],
    [
      'no --out',
      [
        'auth',
        'exchange',
        '--url',
        'http://127.0.0.1:9',
        '--role',
        'k8s-builder',
        '--subject-token-file',
        'f',
      ],
      /--out is required/,
      2,
    ],
    [
      'no --role',
      [
        'auth',
        'exchange',
        '--url',
        'http://127.0.0.1:9',
        '--subject-token-file',
        'f',
        '--out',
        'd',
      ],
      /--role is required/,
      2,
    ],
    [
      'a bad role name',
      ['auth', 'exchange', '--role', 'No Role', '--subject-token-file', 'f', '--out', 'd'],
      /--role: role must match/,
      2,
    ],
    [
      'no URL at all',
      ['auth', 'exchange', '--role', 'k8s-builder', '--subject-token-file', 'f', '--out', 'd'],
      /--url is required \(or set AGENTPACK_URL\)/,
      2,
    ],
    [
      'a bad --ttl',
      [
        'auth',
        'exchange',
        '--url',
        'http://127.0.0.1:9',
        '--role',
        'k8s-builder',
        '--subject-token-file',
        'f',
        '--out',
        'd',
        '--ttl',
        '0',
      ],
      /--ttl must be a whole number of seconds/,
      2,
    ],
    [
      'a missing token file',
      [
        'auth',
        'exchange',
        '--url',
        'http://127.0.0.1:9',
        '--role',
        'k8s-builder',
        '--subject-token-file',
        '/nonexistent/token',
        '--out',
        'd',
      ],
      /--subject-token-file: cannot read \/nonexistent\/token \(ENOENT\)/,
      1,
    ],
    [
      'run token without --audience',
      ['run', 'token', '--run-dir', 'd'],
      /--audience is required/,
      2,
    ],
    [
      'run token without --run-dir',
      ['run', 'token', '--audience', 'x'],
      /--run-dir is required/,
      2,
    ],
  ])('bad command line: %s', async (_what, args, message, code) => {
    const res = await runCli(args, home.env());
    expect(res.code).toBe(code);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
  });

  it('never takes the subject token from the command line, and never echoes a file that is not one', async () => {
    const token = await subjectToken();
    for (const args of [['--subject-token', token], [`--subject-token=${token}`]]) {
      const res = await cli(['auth', 'exchange', '--role', 'k8s-builder', '--out', 'd', ...args]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(ONE_LINE);
      expect(res.stderr).toMatch(
        /--subject-token is refused: a token in the command line is visible/,
      );
      expectNoSubjectToken(res.stdout + res.stderr);
    }
    // A token given as a stray argument is not echoed either.
    const stray = await cli([...exchangeArgs(join(tmp.dir, 'stray'), 'f'), token]);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/unexpected argument #1/);
    expectNoSubjectToken(stray.stdout + stray.stderr);

    const notJwt = writeToken('not-a-jwt', 'this is not a token at all, hunter2');
    const out = join(tmp.dir, 'not-jwt');
    const res = await cli(exchangeArgs(out, notJwt));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(/does not hold a JWT/);
    expect(res.stderr).not.toContain('hunter2');
    expect(existsSync(out)).toBe(false);
  });
});

describe('run spawn', () => {
  it('keeps the spawn’s run token in the run directory, for --audience', async () => {
    const out = join(tmp.dir, 'spawned');
    const res = await cli([
      'run',
      'spawn',
      '--url',
      service.url,
      '--device-key-file',
      deviceKeyFile,
      '--task',
      'spawned with a token',
      '--scope',
      'secrets/get:deploy_key',
      '--audience',
      'https://downstream.example',
      '--out',
      out,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`run token to ${join(out, 'run.token')}`);
    expect(readdirSync(out).sort()).toEqual(['run.json', 'run.key', 'run.token']);
    expect(mode(join(out, 'run.token'))).toBe(0o600);
    const token = readFileSync(join(out, 'run.token'), 'utf8').trim();
    expect(res.stdout).not.toContain(token);
    const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    const { payload } = await verifyRunToken(token, 'https://downstream.example');
    expect(payload).toMatchObject({ sub: 'agent-k8s', run_id: info.run_id });

    const bad = await cli([
      'run',
      'spawn',
      '--url',
      service.url,
      '--device-key-file',
      deviceKeyFile,
      '--task',
      't',
      '--scope',
      'secrets/get',
      '--audience',
      'tab\there',
      '--out',
      join(tmp.dir, 'bad-audience'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--audience: audience must be printable ASCII/);
    expect(existsSync(join(tmp.dir, 'bad-audience'))).toBe(false);
  });
});
