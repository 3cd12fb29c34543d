/** /settings/list and /settings/set over real HTTP. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
beforeEach(async () => {
  svc = await startTestService();
});
afterEach(async () => {
  await svc.close();
});

describe('settings', () => {
  it('lists every allow-listed key with value, default and description', async () => {
    const res = await svc.post('/settings/list', {}, svc.bridge);
    expect(res.status).toBe(200);
    const byKey = Object.fromEntries(res.body.settings.map((s: any) => [s.key, s]));
    expect(Object.keys(byKey).sort()).toEqual(
      [
        'delegation.max_ttl_seconds',
        'device_key.max_ttl_seconds',
        'secrets.max_versions',
        'secrets.require_sealed',
        'device.require_signed_requests',
        'runs.max_ttl_seconds',
        'runs.max_depth',
        'runs.max_active_per_agent',
        'delegations.max_active_per_agent',
      ].sort(),
    );
    expect(byKey['delegation.max_ttl_seconds']).toMatchObject({ value: 3600, default: 3600 });
    expect(byKey['secrets.max_versions']).toMatchObject({ value: 10, default: 10 });
    for (const s of res.body.settings) expect(s.description.length).toBeGreaterThan(10);
  });

  it('sets a value, answers the previous one, takes effect on the next request and audits old and new', async () => {
    const res = await svc.post(
      '/settings/set',
      { key: 'device_key.max_ttl_seconds', value: 3600 },
      svc.bridge,
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      key: 'device_key.max_ttl_seconds',
      value: 3600,
      previous: 365 * 24 * 3600,
    });
    await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
    const tooLong = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a', ttl_seconds: 3601 },
      svc.bridge,
    );
    expect(tooLong.status).toBe(400);
    expect(
      (await svc.post('/device/issue', { agent_id: 'agent-a', ttl_seconds: 3600 }, svc.bridge))
        .status,
    ).toBe(201);
    const again = await svc.post(
      '/settings/set',
      { key: 'device_key.max_ttl_seconds', value: 7200 },
      svc.bridge,
    );
    expect(again.body.previous).toBe(3600);
    const events = (await svc.store.auditEvents(50)).filter((e) => e.action === 'setting.set');
    expect(events.map((e) => e.details)).toEqual(
      expect.arrayContaining([
        { previous: 365 * 24 * 3600, value: 3600 },
        { previous: 3600, value: 7200 },
      ]),
    );
    expect(events[0]).toMatchObject({
      category: 'settings',
      target: { setting: 'device_key.max_ttl_seconds' },
    });
  });

  it.each([
    [{ key: 'unknown.key', value: 1 }],
    [{ key: 'secrets.max_versions', value: 0 }],
    [{ key: 'secrets.max_versions', value: 101 }],
    [{ key: 'secrets.max_versions', value: '5' }],
    [{ key: 'secrets.max_versions', value: 2.5 }],
    [{ key: 'delegation.max_ttl_seconds', value: 10 ** 9 }],
    [{ key: 'secrets.max_versions' }],
    [{ key: 'secrets.require_sealed', value: 'true' }],
    [{ key: 'device.require_signed_requests', value: 1 }],
    [{ key: 'secrets.max_versions', value: 5, extra: true }],
  ])('refuses %j with 400 and changes nothing', async (body) => {
    const res = await svc.post('/settings/set', body, svc.bridge);
    expect(res.status).toBe(400);
    const list = await svc.post('/settings/list', {}, svc.bridge);
    expect(list.body.settings.every((s: any) => s.value === s.default)).toBe(true);
  });

  it('is bridge only', async () => {
    await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
    const key = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body
      .device_key;
    expect((await svc.post('/settings/list', {}, svc.device(key))).status).toBe(403);
    expect(
      (await svc.post('/settings/set', { key: 'secrets.max_versions', value: 3 }, svc.device(key)))
        .status,
    ).toBe(403);
  });
});
