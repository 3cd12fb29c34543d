/** Capability tokens as credentials over real HTTP, the well-known document and the ledger. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken, TEST_JWKS, TEST_KID } from './helpers/tokens.js';

let svc: TestService;
let clock: ManualClock;
let device: string;

beforeEach(async () => {
  clock = manualClock(Date.now());
  svc = await startTestService({ clock });
  await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
  await svc.post('/agents/create', { display_name: 'B', agent_id: 'agent-b' }, svc.bridge);
  device = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-1' }, svc.device(device));
  await svc.post('/secrets/put', { name: 'other', value: 'o-1' }, svc.device(device));
});
afterEach(async () => {
  await svc.close();
});

const token = (scope: string[], extra: Partial<Parameters<typeof mintTestToken>[0]> = {}) =>
  mintTestToken({ sub: 'agent-a', scope, nowMs: clock.now(), ...extra });

describe('capability tokens as credentials', () => {
  it('act for their sub within scope; a forged agent_id is ignored', async () => {
    const t = token(['secrets/get:openai_key', 'agents/get']);
    const got = await svc.post(
      '/secrets/get',
      { name: 'openai_key', agent_id: 'agent-b' },
      bearer(t),
    );
    expect(got.status).toBe(200);
    expect(got.body.value).toBe('sk-1');
    expect((await svc.post('/agents/get', { agent_id: 'agent-b' }, bearer(t))).body.agent_id).toBe(
      'agent-a',
    );
  });

  it('are refused outside their scope, per RPC and per resource (403)', async () => {
    const t = token(['secrets/get:openai_key']);
    expect((await svc.post('/secrets/get', { name: 'other' }, bearer(t))).status).toBe(403);
    expect(
      (await svc.post('/secrets/put', { name: 'openai_key', value: 'x' }, bearer(t))).status,
    ).toBe(403);
    expect((await svc.post('/agents/get', {}, bearer(t))).status).toBe(403);
    expect((await svc.post('/device/issue', {}, bearer(t))).status).toBe(403);
    expect((await svc.post('/agents/create', { display_name: 'x' }, bearer(t))).status).toBe(403);
  });

  it('can write within scope', async () => {
    const t = token(['secrets/put:openai_key']);
    const res = await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-2' }, bearer(t));
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(2);
  });

  it('are refused when expired, not yet valid, too long-lived, or for another issuer or audience (401)', async () => {
    const t = token(['agents/get'], { ttlSeconds: 60 });
    clock.advance(60_000 + 30_000 + 1000);
    expect((await svc.post('/agents/get', {}, bearer(t))).status).toBe(401);
    const now = clock.now();
    for (const bad of [
      token(['agents/get'], { ttlSeconds: 901 }),
      token(['agents/get'], { iss: 'someone-else' }),
      token(['agents/get'], { aud: 'other-service' }),
      token(['agents/get'], { nowMs: now + 120_000 }),
    ]) {
      expect((await svc.post('/agents/get', {}, bearer(bad))).status).toBe(401);
    }
    expect(
      (
        await svc.post(
          '/agents/get',
          {},
          bearer(token(['agents/get'], { aud: ['x', 'agentpack'] })),
        )
      ).status,
    ).toBe(200);
  });

  it('are refused when malformed, tampered or of an unknown key (401), never 500', async () => {
    const t = token(['agents/get']);
    const [h, p, s] = t.split('.') as [string, string, string];
    const tamperedPayload = `${h}.${Buffer.from(Buffer.from(p, 'base64url').toString().replace('agent-a', 'agent-b')).toString('base64url')}.${s}`;
    for (const header of [
      'Bearer',
      'Bearer ',
      `Basic ${t}`,
      'Bearer a.b',
      `Bearer ${t}.x`,
      `Bearer ${tamperedPayload}`,
      `Bearer ${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`,
      `Bearer ${'x'.repeat(9000)}`,
    ]) {
      const res = await svc.post('/agents/get', {}, { authorization: header });
      expect(res.status, header.slice(0, 40)).toBe(401);
      expect(res.body.error.code).toBe('unauthenticated');
    }
  });

  it('tell their holder why in the 401 (RFC 6750 invalid_token and details.reason), never a device key', async () => {
    const expired = token(['agents/get'], { ttlSeconds: 60 });
    const t = token(['agents/get']);
    const [h, p, s] = t.split('.') as [string, string, string];
    const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    clock.advance(60_000 + 30_000 + 1000);
    const cases: Array<[string, string]> = [
      [`Bearer ${expired}`, 'expired'],
      [`Bearer ${flipped}`, 'bad_signature'],
      [`Bearer ${token(['agents/get'], { iss: 'someone-else' })}`, 'wrong_issuer'],
      [`Bearer ${token(['agents/get'], { aud: 'other-service' })}`, 'wrong_audience'],
      [`Bearer ${token(['agents/get'], { ttlSeconds: 901 })}`, 'lifetime_too_long'],
      [`Bearer ${token(['agents/get'], { nowMs: clock.now() + 120_000 })}`, 'not_yet_valid'],
      ['Bearer a.b', 'malformed'],
      [`Bearer ${h.replace(/.$/, '!')}.${p}.${s}`, 'malformed'],
    ];
    for (const [header, reason] of cases) {
      const res = await svc.post('/agents/get', {}, { authorization: header });
      expect(res.status, reason).toBe(401);
      expect(res.body.error.details, reason).toEqual({ reason });
      expect(res.headers.get('www-authenticate')).toBe(
        `Bearer realm="agentpack-identity", error="invalid_token", error_description="${reason}"`,
      );
    }
    // A device key that does not verify learns nothing: the same 401 whatever the cause.
    const unknown = await svc.post('/agents/get', {}, svc.device(`apdk_${'A'.repeat(49)}`));
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.details).toBeUndefined();
    expect(unknown.headers.get('www-authenticate')).not.toContain('error=');
  });

  it('still refuse a disabled agent (403), though verified with no store read', async () => {
    const t = token(['agents/get']);
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect((await svc.post('/agents/get', {}, bearer(t))).status).toBe(403);
    const ghost = mintTestToken({ sub: 'ghost-agent', scope: ['agents/get'], nowMs: clock.now() });
    expect((await svc.post('/agents/get', {}, bearer(ghost))).status).toBe(403);
  });

  it('cannot be combined with a device key (400)', async () => {
    const res = await svc.post(
      '/agents/get',
      {},
      { ...bearer(token(['agents/get'])), ...svc.device(device) },
    );
    expect(res.status).toBe(400);
  });
});

describe('GET /.well-known/agentpack-identity', () => {
  it('publishes issuer, audience and the public keys, cacheable, without private parts', async () => {
    const res = await svc.request('/.well-known/agentpack-identity', { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    expect(res.body.issuer).toBe('agentpack-identity');
    expect(res.body.audience).toBe('agentpack');
    // The pinned capability key, then the run-token signing key (ES256, the online key).
    const published = res.body.jwks.keys;
    expect(published).toHaveLength(2);
    expect(published[0]).toMatchObject({
      kty: 'OKP',
      crv: 'Ed25519',
      kid: TEST_KID,
      x: JSON.parse(TEST_JWKS).keys[0].x,
    });
    expect(published[1]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    for (const key of published) expect(key.d).toBeUndefined();
  });
});

describe('/tokens/register', () => {
  const entry = (jti: string) => ({
    jti,
    sub: 'agent-a',
    scope: ['secrets/get'],
    iat: 1_800_000_000,
    exp: 1_800_000_300,
    kid: TEST_KID,
  });

  it('records the ledger entry (bridge only) and refuses a duplicate jti', async () => {
    const res = await svc.post('/tokens/register', entry('jti-1'), svc.bridge);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      jti: 'jti-1',
      sub: 'agent-a',
      scope: ['secrets/get'],
      kid: TEST_KID,
    });
    expect(await svc.store.get('capability_tokens', 'jti-1')).toMatchObject({ sub: 'agent-a' });
    expect((await svc.post('/tokens/register', entry('jti-1'), svc.bridge)).status).toBe(409);
    expect((await svc.post('/tokens/register', entry('jti-2'), svc.device(device))).status).toBe(
      403,
    );
    const audit = (await svc.store.auditEvents(50)).find((e) => e.action === 'token.register');
    expect(audit).toMatchObject({ target: { agent_id: 'agent-a', jti: 'jti-1' } });
  });

  it('refuses an entry that carries a token or bad times', async () => {
    expect(
      (await svc.post('/tokens/register', { ...entry('j3'), token: 'a.b.c' }, svc.bridge)).status,
    ).toBe(400);
    expect(
      (await svc.post('/tokens/register', { ...entry('j4'), exp: 1_700_000_000 }, svc.bridge))
        .status,
    ).toBe(400);
  });
});
