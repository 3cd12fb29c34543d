/**
 * Nothing outlives what made it, no downgrade, bounded fan-out (hardening findings 2, 3, 9):
 * a run, a delegation or a device key made by a credential expires no later than it; an
 * enrolled device's key mints no bearer key; an agent's live runs and delegations are capped.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateDeviceKeys, signRequest } from '@agentpack-identity/protocol';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { newRunKey, runClient, type RunClient } from './helpers/runs.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let clock: ManualClock;
let runs: RunClient;
let dk: string;
beforeEach(async () => {
  // On a whole second, so a token's `exp` (seconds) and the clock (ms) line up exactly.
  clock = manualClock(Math.floor(Date.now() / 1000) * 1000);
  svc = await startTestService({ clock });
  runs = runClient(svc, clock);
  for (const id of ['agent-a', 'agent-b'])
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  dk = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-1' }, svc.device(dk));
});
afterEach(async () => {
  await svc.close();
});

const endMs = (body: { expires_at: string | null }) =>
  body.expires_at === null ? null : Date.parse(body.expires_at);
const token = (ttlSeconds: number, scope = ['runs/spawn', 'delegate', 'secrets/get']) =>
  mintTestToken({ sub: 'agent-a', scope, nowMs: clock.now(), ttlSeconds });

describe('a derived credential never outlives its maker', () => {
  it('a run spawned with a token lasting 5 s ends with the token, not 900 s later', async () => {
    const run = await runs.spawn(bearer(token(5)), {
      scope: ['secrets/get:openai_key'],
      ttl_seconds: 900,
    });
    expect(endMs(run.body)).toBe(clock.now() + 5_000);
    clock.advance(5_000);
    expect((await runs.asRun(run, '/secrets/get', { name: 'openai_key' })).status).toBe(401);
  });

  it('a delegation made with a 300 s token expires with the token', async () => {
    const res = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get'], ttl_seconds: 3600 },
      bearer(token(300)),
    );
    expect(res.status).toBe(201);
    expect(endMs(res.body)).toBe(clock.now() + 300_000);
  });

  it('a device key with a 60 s life issues keys and runs that end with it, rotation included', async () => {
    const short = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a', ttl_seconds: 60 },
      svc.bridge,
    );
    const shortEnd = endMs(short.body)!;
    const issued = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a' },
      svc.device(short.body.device_key),
    );
    expect(issued.status).toBe(201);
    expect(endMs(issued.body)).toBe(shortEnd);
    const longer = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a', ttl_seconds: 3600 },
      svc.device(short.body.device_key),
    );
    expect(endMs(longer.body)).toBe(shortEnd);
    const run = await runs.spawn(svc.device(short.body.device_key), { ttl_seconds: 900 });
    expect(endMs(run.body)).toBe(shortEnd);
    const rotated = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a', rotate: true },
      svc.device(short.body.device_key),
    );
    expect(rotated.status).toBe(201);
    expect(endMs(rotated.body)).toBe(shortEnd);
    // A key without an end still issues keys without one.
    const open = await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.device(dk));
    expect(open.body.expires_at).toBeNull();
  });
});

describe('a rotated or evicted key takes its run trees with it', () => {
  it('rotation and eviction mark the runs the old key spawned revoked, and audit it', async () => {
    const k2 = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body;
    const byK2 = await runs.spawn(svc.device(k2.device_key));
    const rotated = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a', rotate: true },
      svc.device(k2.device_key),
    );
    expect(rotated.status).toBe(201);
    expect((await runs.identity(byK2.run_id)).body.status).toBe('revoked');
    const byK3 = await runs.spawn(svc.device(rotated.body.device_key));
    const keys = generateDeviceKeys();
    const { code } = (
      await svc.post(
        '/device/enrollments/create',
        { agent_id: 'agent-a', replaces_key_id: rotated.body.key_id },
        svc.bridge,
      )
    ).body;
    const enrolled = await svc.post('/device/enroll', {
      code,
      sealing_public_key: Buffer.from(keys.sealing.publicKey).toString('base64url'),
      signing_public_key: Buffer.from(keys.signing.publicKey).toString('base64url'),
    });
    expect(enrolled.status).toBe(201);
    expect((await runs.identity(byK3.run_id)).body.status).toBe('revoked');
    const causes = (await svc.store.auditEvents(1000))
      .filter((e) => e.action === 'run.revoke')
      .map((e) => [e.details?.['cause'], e.details?.['run_ids']]);
    expect(causes).toEqual([
      ['device_key.rotate', byK2.run_id],
      ['device.evict', byK3.run_id],
    ]);
    // Marked ended, they no longer count toward the live-run cap.
    await svc.post('/settings/set', { key: 'runs.max_active_per_agent', value: 1 }, svc.bridge);
    await runs.spawn(svc.device(dk));
  });
});

describe('no downgrade from an enrolled device', () => {
  it('an enrolled device cannot mint a bearer key, signed or not', async () => {
    const keys = generateDeviceKeys();
    const { code } = (
      await svc.post('/device/enrollments/create', { agent_id: 'agent-a' }, svc.bridge)
    ).body;
    const enrolled = await svc.post('/device/enroll', {
      code,
      sealing_public_key: Buffer.from(keys.sealing.publicKey).toString('base64url'),
      signing_public_key: Buffer.from(keys.signing.publicKey).toString('base64url'),
    });
    const key = openEnrolledKey(enrolled.body, keys.sealing);
    await svc.post(
      '/settings/set',
      { key: 'device.require_signed_requests', value: true },
      svc.bridge,
    );
    const body = Buffer.from(JSON.stringify({ agent_id: 'agent-a' }));
    const signed = signRequest({
      method: 'POST',
      path: '/device/issue',
      body,
      signingSeed: keys.signing.privateKey,
      nowMs: clock.now(),
    });
    const res = await svc.request('/device/issue', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...svc.device(key), ...signed },
      body,
    });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe('enrolled_device');
    await svc.post(
      '/settings/set',
      { key: 'device.require_signed_requests', value: false },
      svc.bridge,
    );
    const plain = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a', rotate: true },
      svc.device(key),
    );
    expect(plain.status).toBe(403);
    const issues = (await svc.store.auditEvents(1000)).filter(
      (e) => e.action === 'device_key.issue',
    );
    expect(issues).toHaveLength(1); // dk, by the bridge, in beforeEach
  });
});

describe('an agent holds a bounded number of live runs and delegations', () => {
  it('a spawn beyond runs.max_active_per_agent is 429; ended and expired runs do not count', async () => {
    await svc.post('/settings/set', { key: 'runs.max_active_per_agent', value: 3 }, svc.bridge);
    const first = await runs.spawn(svc.device(dk), { ttl_seconds: 60 });
    const second = await runs.spawn(svc.device(dk), { ttl_seconds: 600 });
    await runs.spawn(second, { scope: ['secrets/get:openai_key'], ttl_seconds: 600 });
    const over = await svc.post(
      '/runs/spawn',
      {
        task: 't',
        scope: ['secrets/get'],
        ttl_seconds: 60,
        public_key: newRunKey().pub,
      },
      svc.device(dk),
    );
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({
      code: 'resource_exhausted',
      details: { max_active_per_agent: 3 },
    });
    clock.advance(61_000); // `first` expires
    await runs.spawn(svc.device(dk), { ttl_seconds: 600 });
    await svc.post('/runs/revoke', { run_id: second.run_id }, svc.device(dk)); // two end
    await runs.spawn(svc.device(dk));
    await runs.spawn(svc.device(dk));
    expect(first.run_id).toMatch(/^run_/);
  });

  it('a delegation beyond delegations.max_active_per_agent is 429; revoked ones do not count', async () => {
    await svc.post(
      '/settings/set',
      { key: 'delegations.max_active_per_agent', value: 2 },
      svc.bridge,
    );
    const make = () =>
      svc.post(
        '/delegate',
        { to_agent: 'agent-b', scope: ['secrets/get'], ttl_seconds: 600 },
        svc.device(dk),
      );
    const one = await make();
    expect((await make()).status).toBe(201);
    const third = await make();
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('resource_exhausted');
    await svc.post('/delegate/revoke', { delegation_id: one.body.delegation_id }, svc.device(dk));
    expect((await make()).status).toBe(201);
  });
});
