/**
 * Workload federation over real HTTP, against a local HTTPS OIDC issuer: trusted issuers and
 * roles (bridge), and `/auth/exchange` turning Kubernetes-, GitHub Actions- and Google-shaped
 * subject tokens into root runs, with every refusal a 401 with its reason, an unreachable
 * issuer a 503, and the subject token never logged, stored or audited.
 */
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, exportJWK, jwtVerify, SignJWT } from 'jose';
import { sqliteFile } from '../functions/src/app.js';
import {
  githubActionsClaims,
  googleClaims,
  kubernetesClaims,
  startOidcIssuer,
  type OidcIssuer,
} from './helpers/oidc-issuer.js';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { newRunKey, runClient, type Run } from './helpers/runs.js';
import { startTestService, type TestService } from './helpers/service.js';

let issuer: OidcIssuer;
/** A second issuer the service also trusts the certificate of, to misbehave on demand. */
let flaky: OidcIssuer;
let svc: TestService;
let clock: ManualClock;
const tokensSeen: string[] = [];

beforeAll(async () => {
  issuer = await startOidcIssuer();
  flaky = await startOidcIssuer({ algs: ['ES256'] });
});
afterAll(async () => {
  await issuer.close();
  await flaky.close();
});

beforeEach(async () => {
  clock = manualClock(Date.now());
  svc = await startTestService({ issuerCa: issuer.ca + flaky.ca, clock });
  await svc.post('/agents/create', { display_name: 'ci', agent_id: 'agent-ci' }, svc.bridge);
  const dk = (await svc.post('/device/issue', { agent_id: 'agent-ci' }, svc.bridge)).body
    .device_key;
  await svc.post('/secrets/put', { name: 'deploy_key', value: 'sk-deploy-1' }, svc.device(dk));
  expect((await svc.post('/issuers/put', { issuer: issuer.issuer }, svc.bridge)).status).toBe(200);
});
afterEach(async () => {
  // The subject tokens never reach a log line, an answer, the audit or the store.
  const stored = readFileSync(sqliteFile(svc.dataDir));
  const events = JSON.stringify(await svc.store.auditEvents(500));
  for (const token of tokensSeen) {
    const signature = token.split('.')[2]!;
    expect(svc.logs.join('\n')).not.toContain(signature);
    expect(svc.responses.join('\n')).not.toContain(signature);
    expect(events).not.toContain(signature);
    expect(stored.includes(Buffer.from(signature))).toBe(false);
  }
  tokensSeen.length = 0;
  await svc.close();
});

const GITHUB_AUD = 'https://github.com/acme';

function githubRole(overrides: Record<string, unknown> = {}) {
  return {
    role: 'ci-deploy',
    issuer: issuer.issuer,
    audiences: [GITHUB_AUD],
    bound_claims: { sub: 'repo:acme/*:ref:refs/heads/main', repository_owner: 'acme' },
    agent_id: 'agent-ci',
    scope: ['secrets/get:deploy_key', 'runs/spawn'],
    ttl_seconds: 600,
    ...overrides,
  };
}

async function putRole(overrides: Record<string, unknown> = {}) {
  const res = await svc.post('/roles/put', githubRole(overrides), svc.bridge);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function mintGithub(
  alg: 'RS256' | 'ES256' | 'EdDSA' = 'ES256',
  claims: Record<string, unknown> = {},
  options: { expiresIn?: number; kid?: string; header?: Record<string, unknown> } = {},
) {
  const token = await issuer.mint(
    { ...githubActionsClaims({ repository: 'acme/app', audience: GITHUB_AUD }), ...claims },
    { alg, ...options },
  );
  tokensSeen.push(token);
  return token;
}

async function exchange(subjectToken: string, extra: Record<string, unknown> = {}) {
  const key = newRunKey();
  const res = await svc.post('/auth/exchange', {
    role: 'ci-deploy',
    subject_token: subjectToken,
    public_key: key.pub,
    ...extra,
  });
  return { res, key };
}

async function runCount(): Promise<number> {
  return (
    await svc.store.query('runs', {
      where: ['agent_id', 'agent-ci'],
      orderBy: 'run_id',
      limit: 100,
    })
  ).length;
}

describe('trusted issuers and roles (bridge)', () => {
  it('puts, lists, gets and deletes issuers and roles, audited', async () => {
    const pinned = generateKeyPairSync('ed25519').publicKey;
    const jwks = { keys: [{ ...(await exportJWK(pinned)), kid: 'k8s-1', alg: 'EdDSA' }] };
    const k8s = await svc.post(
      '/issuers/put',
      { issuer: 'https://kubernetes.default.svc.cluster.local', jwks },
      svc.bridge,
    );
    expect(k8s.status, k8s.text).toBe(200);
    expect(k8s.body).toMatchObject({ discovery: false, jwks });
    const list = await svc.post('/issuers/list', {}, svc.bridge);
    expect(list.body.issuers.map((i: { issuer: string }) => i.issuer)).toEqual(
      [issuer.issuer, 'https://kubernetes.default.svc.cluster.local'].sort(),
    );
    const role = await putRole();
    expect(role).toMatchObject({ role: 'ci-deploy', agent_id: 'agent-ci', ttl_seconds: 600 });
    expect((await svc.post('/roles/get', { role: 'ci-deploy' }, svc.bridge)).body).toEqual(role);
    expect((await svc.post('/roles/list', { limit: 1 }, svc.bridge)).body).toEqual({
      roles: [role],
      next_cursor: null,
    });
    // An issuer a role still trusts cannot go.
    const inUse = await svc.post('/issuers/delete', { issuer: issuer.issuer }, svc.bridge);
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.details).toEqual({ role: 'ci-deploy' });
    expect((await svc.post('/roles/delete', { role: 'ci-deploy' }, svc.bridge)).status).toBe(200);
    expect((await svc.post('/roles/get', { role: 'ci-deploy' }, svc.bridge)).status).toBe(404);
    expect((await svc.post('/issuers/delete', { issuer: issuer.issuer }, svc.bridge)).status).toBe(
      200,
    );
    expect((await svc.post('/issuers/delete', { issuer: issuer.issuer }, svc.bridge)).status).toBe(
      404,
    );
    const actions = (await svc.store.auditEvents(100)).map((e) => e.action);
    for (const a of ['issuer.put', 'role.put', 'role.delete', 'issuer.delete']) {
      expect(actions).toContain(a);
    }
  });

  it('refuses what would be unsafe or cannot work, with a clear 4xx and nothing written', async () => {
    const cases: [string, Record<string, unknown>, number, RegExp][] = [
      ['/issuers/put', { issuer: svc.url }, 400, /own issuer/],
      ['/issuers/put', { issuer: 'http://issuer.example.com' }, 400, /https/],
      ['/issuers/put', { issuer: 'https://issuer.example.com/?x=1' }, 400, /query/],
      [
        '/issuers/put',
        {
          issuer: 'https://k8s',
          jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', d: 'AA' }] },
        },
        400,
        /private/,
      ],
      [
        '/issuers/put',
        { issuer: 'https://k8s', jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] } },
        400,
        /usable/,
      ],
      ['/roles/put', githubRole({ issuer: 'https://unknown.example.com' }), 409, /not trusted/],
      ['/roles/put', githubRole({ agent_id: 'agent-none' }), 404, /agent/],
      ['/roles/put', githubRole({ bound_claims: {} }), 400, /at least one/],
      ['/roles/put', githubRole({ bound_claims: { aud: 'x' } }), 400, /cannot be bound/],
      ['/roles/put', githubRole({ ttl_seconds: 901 }), 400, /max_ttl/],
      ['/roles/put', githubRole({ scope: ['agents/create'] }), 400, /cannot be granted/],
      ['/roles/put', githubRole({ audiences: [] }), 400, /audiences/],
      ['/roles/put', githubRole({ role: 'Bad Role' }), 400, /role/],
      ['/roles/put', githubRole({ bound_claims: { sub: '*' } }), 400, /must not start with \*/],
      ['/roles/put', githubRole({ bound_claims: { sub: ['repo:acme/x', '*x'] } }), 400, /\*/],
      [
        '/roles/put',
        githubRole({ bound_claims: JSON.parse('{"__proto__":"x","sub":"y"}') }),
        400,
        /bound_claims/,
      ],
      ['/issuers/put', { issuer: 'https://169.254.169.254' }, 400, /link-local/],
      ['/issuers/put', { issuer: 'https://metadata.google.internal' }, 400, /metadata/],
      [
        '/issuers/put',
        {
          issuer: 'https://k8s',
          jwks: {
            keys: [{ kty: 'RSA', n: Buffer.alloc(256, 0xc1).toString('base64url'), e: 'AQ' }],
          },
        },
        400,
        /65537/,
      ],
    ];
    for (const [path, body, status, message] of cases) {
      const res = await svc.post(path, body, svc.bridge);
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(status);
      expect(res.body.error.message).toMatch(message);
    }
    expect((await svc.post('/roles/list', {}, svc.bridge)).body.roles).toEqual([]);
    expect((await svc.post('/issuers/list', {}, svc.bridge)).body.issuers).toHaveLength(1);
  });

  it('on a multi-tenant issuer (GitHub Actions, Google), a role must fix the tenant', async () => {
    const github = 'https://token.actions.githubusercontent.com';
    const google = 'https://accounts.google.com';
    for (const iss of [github, google]) {
      expect((await svc.post('/issuers/put', { issuer: iss }, svc.bridge)).status).toBe(200);
    }
    const put = (issuerUrl: string, bound: Record<string, unknown>) =>
      svc.post('/roles/put', githubRole({ issuer: issuerUrl, bound_claims: bound }), svc.bridge);
    for (const bound of [
      { sub: 'repo:*' },
      { environment: 'prod' },
      { repository: 'acme*' },
      { sub: ['repo:acme/app:*', 'repo:*'] },
      { repository_owner: 'ac*' },
    ]) {
      const res = await put(github, bound);
      expect(res.status, JSON.stringify(bound)).toBe(400);
      expect(res.body.error.message).toMatch(/every repository/);
    }
    for (const bound of [
      { sub: 'repo:acme/*' },
      { repository_owner: 'acme', environment: 'prod' },
      { repository: 'acme/*', ref: 'refs/heads/main' },
      { job_workflow_ref: 'acme/workflows/.github/workflows/deploy.yml@*' },
    ]) {
      expect((await put(github, bound)).status, JSON.stringify(bound)).toBe(200);
    }
    expect((await put(google, { email: 'deployer@*' })).status).toBe(400);
    expect((await put(google, { email_verified: 'true' })).status).toBe(400);
    expect((await put(google, { email: 'deployer@acme.iam.gserviceaccount.com' })).status).toBe(
      200,
    );
  });

  it('stores and answers only the public members of pinned keys', async () => {
    const pinned = generateKeyPairSync('ed25519').publicKey;
    const jwk = { ...(await exportJWK(pinned)), kid: 'k1' };
    const res = await svc.post(
      '/issuers/put',
      {
        issuer: 'https://k8s.example',
        jwks: { keys: [{ ...jwk, x5c: [['a']], '': 1, __x__: { deep: [1] } }] },
      },
      svc.bridge,
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.jwks).toEqual({ keys: [jwk] });
    expect((await svc.post('/issuers/list', {}, svc.bridge)).body.issuers[1].jwks).toEqual({
      keys: [jwk],
    });
  });
});

describe('/auth/exchange', () => {
  it('turns a GitHub Actions token into a root run of the role (ES256 and RS256), with a verifiable run token', async () => {
    await putRole();
    for (const alg of ['ES256', 'RS256'] as const) {
      const subject = await mintGithub(alg, {}, { expiresIn: 300 });
      const { res, key } = await exchange(subject);
      expect(res.status, res.text).toBe(201);
      expect(res.body).toMatchObject({
        agent_id: 'agent-ci',
        parent_run_id: null,
        scope: ['secrets/get:deploy_key', 'runs/spawn'],
        lineage: [res.body.run_id],
      });
      // The run never outlives the subject token (300 s here, the role allows 600).
      const subjectExp = JSON.parse(
        Buffer.from(subject.split('.')[1]!, 'base64url').toString(),
      ).exp;
      expect(Date.parse(res.body.expires_at)).toBeLessThanOrEqual(subjectExp * 1000);
      const jwks = createRemoteJWKSet(new URL(`${svc.url}/.well-known/jwks.json`));
      const { payload } = await jwtVerify(res.body.token, jwks, {
        issuer: svc.url,
        audience: svc.url,
        typ: 'agentpack-run+jwt',
      });
      expect(payload).toMatchObject({ sub: 'agent-ci', run_id: res.body.run_id });
      // The run acts within the role's scope.
      const rc = runClient(svc, clock);
      const run: Run = { run_id: res.body.run_id, seed: key.seed, body: res.body };
      const got = await rc.asRun(run, '/secrets/get', { name: 'deploy_key' });
      expect(got.status).toBe(200);
      expect(got.body.value).toBe('sk-deploy-1');
      expect((await rc.asRun(run, '/secrets/list', {})).status).toBe(403);
    }
    const events = (await svc.store.auditEvents(100)).filter((e) => e.action === 'auth.exchange');
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      actor: {
        kind: 'federated',
        role: 'ci-deploy',
        issuer: issuer.issuer,
        subject: 'repo:acme/app:ref:refs/heads/main',
      },
      target: { agent_id: 'agent-ci', run_id: expect.stringMatching(/^run_/) },
    });
  });

  it('accepts the RFC 8693 field names, and refuses other grant and token types (400)', async () => {
    await putRole();
    const ok = await exchange(await mintGithub(), {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      requested_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: 'sts.amazonaws.com',
      task: 'deploy acme/app',
      ttl_seconds: 120,
    });
    expect(ok.res.status, ok.res.text).toBe(201);
    expect(Date.parse(ok.res.body.expires_at) - Date.parse(ok.res.body.created_at)).toBe(120_000);
    const claims = JSON.parse(Buffer.from(ok.res.body.token.split('.')[1], 'base64url').toString());
    expect(claims.aud).toBe('sts.amazonaws.com');
    for (const extra of [
      { grant_type: 'client_credentials' },
      { subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' },
      { ttl_seconds: 601 },
      { unknown: 1 },
    ]) {
      const { res } = await exchange(await mintGithub(), extra);
      expect(res.status, JSON.stringify(extra)).toBe(400);
    }
    expect(await runCount()).toBe(1);
  });

  it('takes Kubernetes tokens against pinned keys (EdDSA) and Google tokens (RS256) with bound claims', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const k8sIssuer = 'https://kubernetes.default.svc.cluster.local';
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k8s-1' }] };
    expect((await svc.post('/issuers/put', { issuer: k8sIssuer, jwks }, svc.bridge)).status).toBe(
      200,
    );
    await putRole({
      role: 'k8s-worker',
      issuer: k8sIssuer,
      audiences: ['agentpack-identity'],
      bound_claims: {
        sub: ['system:serviceaccount:agents:worker', 'system:serviceaccount:agents:batch-*'],
      },
    });
    const now = Math.floor(Date.now() / 1000);
    const k8sToken = async (sa: string) => {
      const token = await new SignJWT({
        ...kubernetesClaims({
          namespace: 'agents',
          serviceAccount: sa,
          audience: ['agentpack-identity'],
        }),
        iss: k8sIssuer,
        iat: now,
        exp: now + 3600,
      })
        .setProtectedHeader({ alg: 'EdDSA', kid: 'k8s-1' })
        .sign(privateKey);
      tokensSeen.push(token);
      return token;
    };
    for (const [sa, status] of [
      ['worker', 201],
      ['batch-7', 201],
      ['admin', 401],
    ] as const) {
      const { res } = await exchange(await k8sToken(sa), { role: 'k8s-worker' });
      expect(res.status, sa).toBe(status);
      if (status === 401)
        expect(res.body.error.details).toEqual({ reason: 'claim_mismatch', claim: 'sub' });
    }
    await putRole({
      role: 'gcp-sa',
      audiences: ['https://identity.example.com'],
      bound_claims: { email: 'deployer@acme-prod.iam.gserviceaccount.com' },
    });
    const google = await issuer.mint(
      googleClaims({
        email: 'deployer@acme-prod.iam.gserviceaccount.com',
        audience: 'https://identity.example.com',
      }),
      { alg: 'RS256' },
    );
    tokensSeen.push(google);
    expect((await exchange(google, { role: 'gcp-sa' })).res.status).toBe(201);
  });

  it('refuses every failing token with a 401 and its reason, and makes no run', async () => {
    await putRole();
    const good = await mintGithub();
    const [h, p] = good.split('.');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const otherIssuer = await startOidcIssuer();
    try {
      const foreign = await otherIssuer.mint(
        githubActionsClaims({ repository: 'acme/app', audience: GITHUB_AUD }),
        { alg: 'ES256' },
      );
      // Same claims and kid as ours, signed by another key: a forgery.
      const forged = await otherIssuer.mint(
        { ...claims },
        { alg: 'ES256', header: { kid: JSON.parse(Buffer.from(h!, 'base64url').toString()).kid } },
      );
      const now = Math.floor(Date.now() / 1000);
      const cases: [string, string, Record<string, unknown>, string][] = [
        ['unknown role', good, { role: 'no-such-role' }, 'unknown_role'],
        ['another issuer', foreign, {}, 'untrusted_issuer'],
        ['forged signature', forged, {}, 'bad_signature'],
        [
          'tampered payload',
          `${h}.${b64({ ...claims, repository_owner: 'evil' })}.${good.split('.')[2]}`,
          {},
          'bad_signature',
        ],
        [
          'unknown kid',
          await mintGithub('ES256', {}, { header: { kid: 'nope' } }),
          {},
          'bad_signature',
        ],
        ['expired', await mintGithub('ES256', { iat: now - 700, exp: now - 60 }), {}, 'expired'],
        [
          'expired within the skew',
          await mintGithub('ES256', { iat: now - 700, exp: now - 5 }),
          {},
          'expired',
        ],
        ['not yet valid (nbf)', await mintGithub('ES256', { nbf: now + 120 }), {}, 'not_yet_valid'],
        [
          'issued in the future',
          await mintGithub('ES256', { iat: now + 120 }),
          {},
          'not_yet_valid',
        ],
        [
          'wrong audience',
          await mintGithub('ES256', { aud: 'https://github.com/evil' }),
          {},
          'wrong_audience',
        ],
        [
          'another branch',
          await mintGithub('ES256', { sub: 'repo:acme/app:ref:refs/heads/dev' }),
          {},
          'claim_mismatch',
        ],
        [
          'another owner',
          await mintGithub('ES256', { repository_owner: 'evil' }),
          {},
          'claim_mismatch',
        ],
        [
          'bound claim not a string',
          await mintGithub('ES256', { repository_owner: ['acme'] }),
          {},
          'claim_mismatch',
        ],
        ['alg none', `${b64({ alg: 'none' })}.${p}.`, {}, 'unsupported_alg'],
        ['alg none, with a signature', `${b64({ alg: 'none' })}.${p}.AAAA`, {}, 'unsupported_alg'],
        ['HS256', `${b64({ alg: 'HS256', kid: 'x' })}.${p}.AAAA`, {}, 'unsupported_alg'],
        ['RS512', `${b64({ alg: 'RS512' })}.${p}.AAAA`, {}, 'unsupported_alg'],
        [
          'crit header',
          `${b64({ alg: 'ES256', kid: 'x', crit: ['exp'], exp: 1 })}.${p}.AAAA`,
          {},
          'malformed',
        ],
        ['no exp', `${h}.${b64({ ...claims, exp: undefined })}.AAAA`, {}, 'malformed'],
        ['two parts', `${h}.${p}`, {}, 'malformed'],
        ['padding', `${h}.${p}=.AAAA`, {}, 'malformed'],
        ['not JSON', `${h}.bm90IGpzb24.AAAA`, {}, 'malformed'],
        [
          'sub with an escape',
          await mintGithub('ES256', { sub: 'repo:acme/app:ref:refs/heads/main\u001b[31m' }),
          {},
          'malformed',
        ],
        [
          'sub with a bidi override',
          await mintGithub('ES256', { sub: 'repo:acme/app:ref:refs/heads/main\u202e' }),
          {},
          'malformed',
        ],
        [
          'sub with a lone surrogate',
          await mintGithub('ES256', { sub: 'repo:acme/app:ref:refs/heads/main\ud800' }),
          {},
          'malformed',
        ],
      ];
      for (const [what, token, extra, reason] of cases) {
        const { res } = await exchange(token, extra);
        expect(res.status, `${what}: ${res.text}`).toBe(401);
        expect(res.body.error.code, what).toBe('unauthenticated');
        expect(res.body.error.details.reason, what).toBe(reason);
        expect(res.text).not.toContain(token.split('.')[2] || 'never');
      }
      expect(await runCount()).toBe(0);
    } finally {
      await otherIssuer.close();
    }
  });

  it('refuses a role whose agent is disabled or retired (401 agent_disabled)', async () => {
    await putRole();
    await svc.post('/agents/disable', { agent_id: 'agent-ci' }, svc.bridge);
    const disabled = await exchange(await mintGithub());
    expect(disabled.res.status).toBe(401);
    expect(disabled.res.body.error.details.reason).toBe('agent_disabled');
    await svc.post('/agents/retire', { agent_id: 'agent-ci', confirm: 'agent-ci' }, svc.bridge);
    const retired = await exchange(await mintGithub());
    expect(retired.res.status).toBe(401);
    expect(retired.res.body.error.details.reason).toBe('agent_disabled');
    expect(await runCount()).toBe(0);
  });

  it('ends the runs of a role when the role is deleted or changed (the whole tree)', async () => {
    await putRole();
    const rc = runClient(svc, clock);
    const make = async () => {
      const { res, key } = await exchange(await mintGithub());
      expect(res.status, res.text).toBe(201);
      const root: Run = { run_id: res.body.run_id, seed: key.seed, body: res.body };
      const child = await rc.spawn(root, { scope: ['secrets/get:deploy_key'] });
      return [root, child];
    };
    const readAll = async (runs: Run[]) =>
      Promise.all(
        runs.map(async (r) => (await rc.asRun(r, '/secrets/get', { name: 'deploy_key' })).status),
      );
    const first = await make();
    expect(await readAll(first)).toEqual([200, 200]);
    clock.advance(1);
    await putRole({ scope: ['secrets/get:deploy_key'] });
    expect(await readAll(first)).toEqual([401, 401]);
    expect((await rc.identity(first[1]!.run_id)).body.status).toBe('revoked');
    const second = await make().catch(() => null);
    expect(second).toBeNull(); // the new scope has no runs/spawn: the child spawn is refused
    await putRole();
    const third = await make();
    expect(await readAll(third)).toEqual([200, 200]);
    // The same role put again is no change: its runs go on, and nothing is audited.
    clock.advance(1);
    const puts = async () =>
      (await svc.store.auditEvents(500)).filter((e) => e.action === 'role.put').length;
    const before = await puts();
    await putRole();
    expect(await readAll(third)).toEqual([200, 200]);
    expect(await puts()).toBe(before);
    await svc.post('/roles/delete', { role: 'ci-deploy' }, svc.bridge);
    expect(await readAll(third)).toEqual([401, 401]);
  });

  it('never exchanges a token of this service (a run token cannot become a new run)', async () => {
    await putRole();
    const first = await exchange(await mintGithub());
    expect(first.res.status).toBe(201);
    const again = await exchange(first.res.body.token);
    expect(again.res.status).toBe(401);
    expect(again.res.body.error.details.reason).toBe('malformed');
  });

  it('picks up a rotated issuer key (one JWKS refetch), and answers 503 when the issuer cannot be reached', async () => {
    await putRole();
    const before = issuer.count(issuer.jwksPath);
    expect((await exchange(await mintGithub())).res.status).toBe(201);
    expect((await exchange(await mintGithub())).res.status).toBe(201);
    expect(issuer.count(issuer.jwksPath) - before).toBe(1);
    const rotated = await issuer.addKey('ES256', `rotated-${Date.now()}`);
    const early = await mintGithub('ES256', {}, { kid: rotated.kid });
    // Within the minute of the last fetch an unknown kid is refused without a refetch ...
    expect((await exchange(early)).res.body.error.details.reason).toBe('bad_signature');
    expect(issuer.count(issuer.jwksPath) - before).toBe(1);
    // ... and after it, it is fetched once and the new key verifies.
    clock.advance(61_000);
    const { res } = await exchange(await mintGithub('ES256', {}, { kid: rotated.kid }));
    expect(res.status, res.text).toBe(201);
    expect(issuer.count(issuer.jwksPath) - before).toBe(2);
    // A fresh service (an empty cache) with the issuer down: 503, not a 401.
    const down = await startOidcIssuer();
    const downIssuer = down.issuer;
    await down.close();
    await svc.post('/issuers/put', { issuer: downIssuer }, svc.bridge);
    await putRole({ role: 'down-role', issuer: downIssuer });
    const unreachable = await exchange(await mintGithub('ES256', { iss: downIssuer }), {
      role: 'down-role',
    });
    expect(unreachable.res.status).toBe(503);
    expect(unreachable.res.body.error.code).toBe('unavailable');
  });

  it('answers 503 for an issuer serving garbage, and a later good answer works (nothing poisoned)', async () => {
    try {
      await svc.post('/issuers/put', { issuer: flaky.issuer }, svc.bridge);
      await putRole({ role: 'flaky-role', issuer: flaky.issuer });
      const subject = await flaky.mint(
        githubActionsClaims({ repository: 'acme/app', audience: GITHUB_AUD }),
        { alg: 'ES256' },
      );
      tokensSeen.push(subject);
      for (const how of ['garbage', 'huge', 'redirect', 'error'] as const) {
        flaky.behave(flaky.jwksPath, how);
        clock.advance(61_000);
        const { res } = await exchange(subject, { role: 'flaky-role' });
        expect(res.status, how).toBe(503);
        expect(res.body.error).toEqual({
          code: 'unavailable',
          message: expect.any(String),
        });
      }
      flaky.behave(flaky.jwksPath, 'ok');
      clock.advance(61_000);
      const good = await exchange(subject, { role: 'flaky-role' });
      expect(good.res.status, good.res.text).toBe(201);
      // Cached now: garbage at the issuer changes nothing for a known key.
      flaky.behave(flaky.jwksPath, 'garbage');
      expect((await exchange(subject, { role: 'flaky-role' })).res.status).toBe(201);
    } finally {
      flaky.behave(flaky.jwksPath, 'ok');
    }
  });
});
