/**
 * Run tokens and the service as an OIDC issuer, over real HTTP: the token at spawn and from
 * `/runs/token`, verified by `jose` from `/.well-known/jwks.json` exactly as a downstream
 * service or a cloud would; discovery; a run token never accepted as a capability token and a
 * capability token never verifying as a run token; the signing key never in the store; a
 * signing failure leaving no run behind; and the same over Cloud KMS (the local gRPC fake).
 */
import { readFileSync, statSync } from 'node:fs';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { signingKeyFile, sqliteFile } from '../functions/src/app.js';
import { openKmsSigner } from '../functions/src/adapters/kms-signer.js';
import { ApiError } from '../functions/src/core/errors.js';
import type { TokenSigner } from '../functions/src/ports/token-signer.js';
import { startFakeKms, type FakeKms } from './helpers/fake-kms.js';
import { newRunKey, runClient, type Run, type RunClient } from './helpers/runs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';
import { systemClock } from '../functions/src/ports/clock.js';

const RUN_TYP = 'agentpack-run+jwt';

let svc: TestService;
let rc: RunClient;
let dk: string;

async function setUp(options: Parameters<typeof startTestService>[0] = {}): Promise<void> {
  svc = await startTestService(options);
  rc = runClient(svc, systemClock);
  await svc.post('/agents/create', { display_name: 'a', agent_id: 'agent-a' }, svc.bridge);
  dk = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
}

/** Verifies a run token as a downstream service does: JWKS from the well-known URL. */
function verifyRunToken(token: string, audience = svc.url) {
  const jwks = createRemoteJWKSet(new URL(`${svc.url}/.well-known/jwks.json`));
  return jwtVerify(token, jwks, {
    issuer: svc.url,
    audience,
    typ: RUN_TYP,
    algorithms: ['ES256'],
  });
}

describe('run tokens (local signing key)', () => {
  beforeEach(() => setUp());
  afterEach(() => svc.close());

  it('answers a run token at spawn that jose verifies from /.well-known/jwks.json, with the run as claims', async () => {
    const root = await rc.spawn(svc.device(dk));
    const child = await rc.spawn(root, { scope: ['secrets/get:openai_key'] });
    for (const run of [root, child]) {
      const { payload, protectedHeader } = await verifyRunToken(run.body.token);
      expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: RUN_TYP });
      expect(payload).toMatchObject({
        iss: svc.url,
        sub: 'agent-a',
        // By default a run token is for this service (its issuer URL), never the capability
        // tokens' audience.
        aud: svc.url,
        run_id: run.run_id,
        root_run_id: root.run_id,
        lineage: run.body.lineage,
        scope: run.body.scope,
      });
      expect(payload.exp).toBe(Math.floor(Date.parse(run.body.expires_at) / 1000));
      expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
      expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const spawnEvent = (await svc.store.auditEvents(50)).find(
        (e) => e.action === 'run.spawn' && e.target.run_id === run.run_id,
      );
      expect(spawnEvent?.details?.['token_jti']).toBe(payload.jti);
    }
    expect(child.body.lineage).toEqual([root.run_id, child.run_id]);
  });

  it('signs a token for the audience asked at spawn', async () => {
    const run = await rc.spawn(svc.device(dk), { audience: 'https://api.example.com' });
    await expect(verifyRunToken(run.body.token)).rejects.toThrow(/aud/);
    const { payload } = await verifyRunToken(run.body.token, 'https://api.example.com');
    expect(payload.aud).toBe('https://api.example.com');
  });

  it('/runs/token: the run gets a token for another audience (201), audited; never past the run', async () => {
    const run = await rc.spawn(svc.device(dk));
    const res = await rc.asRun(run, '/runs/token', { audience: '//iam.googleapis.com/x' });
    expect(res.status, res.text).toBe(201);
    const { payload } = await verifyRunToken(res.body.token, '//iam.googleapis.com/x');
    expect(payload.run_id).toBe(run.run_id);
    expect(res.body.expires_at).toBe(new Date(payload.exp! * 1000).toISOString());
    expect(payload.exp! * 1000).toBeLessThanOrEqual(Date.parse(run.body.expires_at));
    const events = (await svc.store.auditEvents(50)).filter((e) => e.action === 'run.token');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: { kind: 'run', run_id: run.run_id },
      target: { run_id: run.run_id, jti: payload.jti },
      details: { audience: '//iam.googleapis.com/x' },
    });
    expect(JSON.stringify(events)).not.toContain(res.body.token.split('.')[2]);
  });

  it('/runs/token refuses an ended run (401), other callers (403) and bad audiences (400)', async () => {
    const run = await rc.spawn(svc.device(dk));
    const byDevice = await svc.post('/runs/token', { audience: 'x' }, svc.device(dk));
    expect(byDevice.status).toBe(403);
    for (const audience of ['', 'x'.repeat(257), 'a\nb', 5]) {
      const res = await rc.asRun(run, '/runs/token', { audience });
      expect(res.status, String(audience)).toBe(400);
    }
    expect((await rc.asRun(run, '/runs/token', { audience: 'x', extra: 1 })).status).toBe(400);
    expect((await rc.asRun(run, '/runs/complete', {})).status).toBe(200);
    const ended = await rc.asRun(run, '/runs/token', { audience: 'x' });
    expect(ended.status).toBe(401);
    expect(ended.body.error.code).toBe('unauthenticated');
  });

  it('publishes OIDC discovery whose jwks_uri serves the signing key', async () => {
    const res = await svc.request('/.well-known/openid-configuration', { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.body).toEqual({
      issuer: svc.url,
      jwks_uri: `${svc.url}/.well-known/jwks.json`,
      id_token_signing_alg_values_supported: ['ES256'],
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      claims_supported: expect.arrayContaining(['iss', 'sub', 'aud', 'run_id', 'lineage']),
    });
    const jwks = await svc.request('/.well-known/jwks.json', { method: 'GET' });
    expect(jwks.body.keys).toHaveLength(1);
    const [key] = jwks.body.keys;
    expect(key).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: expect.any(String),
      y: expect.any(String),
      kid: expect.any(String),
      alg: 'ES256',
      use: 'sig',
    });
    const run = await rc.spawn(svc.device(dk));
    expect(decodeProtectedHeader(run.body.token).kid).toBe(key.kid);
    // The service's own document lists it too, beside the capability keys.
    const doc = await svc.request('/.well-known/agentpack-identity', { method: 'GET' });
    expect(doc.body.jwks.keys.map((k: { alg: string }) => k.alg).sort()).toEqual([
      'ES256',
      'EdDSA',
    ]);
  });

  it('never takes a run token for a capability token, nor a capability token for a run token', async () => {
    const run = await rc.spawn(svc.device(dk));
    const asBearer = await svc.post('/agents/get', {}, bearer(run.body.token));
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(['malformed', 'unsupported_alg', 'bad_typ']).toContain(
      asBearer.body.error.details.reason,
    );
    // A capability token does not verify against the run-token keys (another key, alg, typ).
    const cap = mintTestToken({ sub: 'agent-a', scope: ['agents/get'], nowMs: Date.now() });
    expect((await svc.post('/agents/get', {}, bearer(cap))).status).toBe(200);
    await expect(verifyRunToken(cap)).rejects.toThrow();
    // A token with the run typ signed by another EdDSA key: jose finds no key for it.
    const jwks = (await svc.request('/.well-known/jwks.json', { method: 'GET' })).body;
    const { privateKey } = generateKeyPairSync('ed25519');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const header = { alg: 'EdDSA', typ: RUN_TYP, kid: jwks.keys[0].kid };
    const claims = { iss: svc.url, sub: 'agent-a', aud: 'agentpack', exp: 2 ** 31 };
    const input = `${b64(header)}.${b64(claims)}`;
    const forged = `${input}.${cryptoSign(null, Buffer.from(input), privateKey).toString('base64url')}`;
    await expect(
      jwtVerify(forged, createLocalJWKSet(jwks), { issuer: svc.url, typ: RUN_TYP }),
    ).rejects.toThrow();
    // And a run token with its typ changed no longer verifies at all (the header is signed).
    const [h, p, s] = run.body.token.split('.');
    const retyped = `${b64({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), typ: 'agentpack-cap+jwt' })}.${p}.${s}`;
    await expect(jwtVerify(retyped, createLocalJWKSet(jwks))).rejects.toThrow(/signature/);
  });

  it('keeps the signing key in a 0600 file of the data dir, never in the store', async () => {
    const file = signingKeyFile(svc.dataDir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { keys } = JSON.parse(readFileSync(file, 'utf8'));
    await rc.spawn(svc.device(dk));
    const stored = readFileSync(sqliteFile(svc.dataDir));
    expect(stored.includes(Buffer.from(keys[0].d))).toBe(false);
    expect(svc.logs.join('\n')).not.toContain(keys[0].d);
  });
});

describe('run tokens: a signer that fails', () => {
  let signs = 0;
  let failing = false;
  afterEach(() => svc.close());

  it('spawn answers the failure (503) and leaves the run it made revoked, audited', async () => {
    const { localSigner, parseSigningKeys, generateSigningKeysText } =
      await import('../functions/src/adapters/local-signer.js');
    const inner = localSigner(parseSigningKeys(generateSigningKeysText(), 'test'));
    const signer: TokenSigner = {
      ...inner,
      sign: async (kid, data) => {
        signs++;
        if (failing) throw new ApiError('unavailable', 'the key service is unavailable');
        return inner.sign(kid, data);
      },
    };
    await setUp({ signer });
    await rc.spawn(svc.device(dk));
    expect(signs).toBe(1);
    failing = true;
    const res = await svc.post(
      '/runs/spawn',
      { task: 't', scope: ['agents/get'], ttl_seconds: 60, public_key: newRunKey().pub },
      svc.device(dk),
    );
    expect(res.status).toBe(503);
    expect(signs).toBe(2);
    const runs = await svc.store.query('runs', {
      where: ['agent_id', 'agent-a'],
      orderBy: 'run_id',
      limit: 10,
    });
    expect(runs).toHaveLength(2);
    const abandoned = runs.filter((r) => r.doc.ended === 'revoked');
    expect(abandoned).toHaveLength(1);
    const events = (await svc.store.auditEvents(50)).filter((e) => e.action === 'run.revoke');
    expect(events[0]?.details).toMatchObject({ cause: 'token_signing_failed' });
  });
});

describe('run tokens over Cloud KMS (the local gRPC KMS)', () => {
  let kms: FakeKms;
  let signer: TokenSigner;
  beforeAll(async () => {
    kms = await startFakeKms();
  });
  afterAll(async () => {
    await kms.stop();
  });
  beforeEach(async () => {
    kms.reset();
    signer = await openKmsSigner({
      versionName: kms.signingVersion(1),
      apiEndpoint: '127.0.0.1',
      port: kms.port,
      insecure: true,
      timeoutMs: 2000,
    });
    await setUp({ signer });
  });
  afterEach(async () => {
    await svc.close();
    await signer.close();
  });

  it('signs run tokens in KMS (one AsymmetricSign per token) that jose verifies', async () => {
    kms.calls.length = 0;
    const runs: Run[] = [];
    for (let i = 0; i < 3; i++) runs.push(await rc.spawn(svc.device(dk)));
    for (const run of runs) await verifyRunToken(run.body.token);
    expect(kms.calls.filter((c) => c === 'AsymmetricSign')).toHaveLength(3);
    expect(kms.calls.filter((c) => c === 'GetPublicKey')).toHaveLength(1);
  });

  it('refuses a corrupted KMS signature: no token is answered and the run is revoked', async () => {
    kms.corruptNextSign(10, 'other-key');
    const res = await svc.post(
      '/runs/spawn',
      { task: 't', scope: ['agents/get'], ttl_seconds: 60, public_key: newRunKey().pub },
      svc.device(dk),
    );
    expect(res.status).toBe(500);
    expect(res.text).not.toMatch(/token/);
    const runs = await svc.store.query('runs', {
      where: ['agent_id', 'agent-a'],
      orderBy: 'run_id',
      limit: 10,
    });
    expect(runs.map((r) => r.doc.ended)).toEqual(['revoked']);
  });

  it('publishes a new KMS key version before it signs, and keeps publishing the old one', async () => {
    const v2 = kms.addSigningVersion();
    const next = await openKmsSigner({
      versionName: v2,
      apiEndpoint: '127.0.0.1',
      port: kms.port,
      insecure: true,
    });
    try {
      // The v1 signer lists v2 (a fresh signer lists at once; the refresh is the unit test's).
      const published = await next.publishedKeys();
      expect(published).toHaveLength(2);
      const old = await rc.spawn(svc.device(dk));
      // Switched over to v2: a token signed by v1 still verifies against what v2's signer publishes.
      const jwks = createLocalJWKSet({ keys: published as never[] });
      await jwtVerify(old.body.token, jwks, { issuer: svc.url, typ: RUN_TYP });
      expect(published[0]!.kid).toBe(await next.signingKid());
    } finally {
      await next.close();
    }
  });
});
