/** /device/issue and /device/revoke over real HTTP, with a frozen clock for expiry. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
let clock: ManualClock;
beforeEach(async () => {
  clock = manualClock();
  svc = await startTestService({ clock });
  await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
  await svc.post('/agents/create', { display_name: 'B', agent_id: 'agent-b' }, svc.bridge);
});
afterEach(async () => {
  await svc.close();
});

async function issue(agentId: string, extra: Record<string, unknown> = {}) {
  const res = await svc.post('/device/issue', { agent_id: agentId, ...extra }, svc.bridge);
  expect(res.status).toBe(201);
  return res.body as {
    key_id: string;
    device_key: string;
    agent_id: string;
    expires_at: string | null;
  };
}

describe('/device/issue', () => {
  it('issues a prefixed 256-bit key, shown once and stored only as a digest', async () => {
    const res = await svc.post(
      '/device/issue',
      { agent_id: 'agent-a', label: 'laptop' },
      svc.bridge,
    );
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      key_id: expect.stringMatching(/^dk_[A-Za-z0-9_-]{16}$/),
      agent_id: 'agent-a',
      device_key: expect.stringMatching(/^apdk_[A-Za-z0-9_-]{49}$/),
      label: 'laptop',
      created_at: '2026-01-01T00:00:00.000Z',
      expires_at: null,
    });
    const key = res.body.device_key as string;
    const stored = await svc.store.get('device_keys', svc.digest('device_key', key));
    expect(stored).toMatchObject({
      key_id: res.body.key_id,
      agent_id: 'agent-a',
      revoked_at: null,
    });
    expect(JSON.stringify(stored)).not.toContain(key);
    // The clear key is nowhere in the database files.
    for (const file of readdirSync(svc.dataDir)) {
      expect(readFileSync(join(svc.dataDir, file)).includes(Buffer.from(key))).toBe(false);
    }
    const event = (await svc.store.auditEvents(10)).find((e) => e.action === 'device_key.issue');
    expect(event).toMatchObject({ target: { agent_id: 'agent-a', key_id: res.body.key_id } });
  });

  it('issues distinct keys each time', async () => {
    const a = await issue('agent-a');
    const b = await issue('agent-a');
    expect(a.device_key).not.toBe(b.device_key);
    expect(a.key_id).not.toBe(b.key_id);
  });

  it('needs agent_id with the bridge key and refuses an unknown agent with 404', async () => {
    expect((await svc.post('/device/issue', {}, svc.bridge)).status).toBe(400);
    const res = await svc.post('/device/issue', { agent_id: 'nobody-here' }, svc.bridge);
    expect(res.status).toBe(404);
  });

  it('refuses rotate with the bridge key, and bad ttl or label values', async () => {
    for (const body of [
      { agent_id: 'agent-a', rotate: true },
      { agent_id: 'agent-a', ttl_seconds: 0 },
      { agent_id: 'agent-a', ttl_seconds: 1.5 },
      { agent_id: 'agent-a', ttl_seconds: 366 * 24 * 3600 },
      { agent_id: 'agent-a', label: '' },
      { agent_id: 'agent-a', label: 'a\nb' },
      { agent_id: 'agent-a', rotate: 'yes' },
    ]) {
      const res = await svc.post('/device/issue', body, svc.bridge);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect(await svc.store.find('device_keys', 'agent_id', 'agent-a', 10)).toEqual([]);
  });

  it('lets a device key issue for its own agent only; a forged agent_id is ignored', async () => {
    const a = await issue('agent-a');
    const res = await svc.post('/device/issue', { agent_id: 'agent-b' }, svc.device(a.device_key));
    expect(res.status).toBe(201);
    expect(res.body.agent_id).toBe('agent-a');
    expect(await svc.store.find('device_keys', 'agent_id', 'agent-b', 10)).toEqual([]);
  });

  it('expires a key with ttl_seconds exactly when its time is up', async () => {
    const k = await issue('agent-a', { ttl_seconds: 60 });
    expect(k.expires_at).toBe('2026-01-01T00:01:00.000Z');
    clock.advance(59_999);
    expect((await svc.post('/agents/get', {}, svc.device(k.device_key))).status).toBe(200);
    clock.advance(1);
    const res = await svc.post('/agents/get', {}, svc.device(k.device_key));
    expect(res.status).toBe(401);
    expect(svc.logs.some((l) => l.includes('"reason":"expired"'))).toBe(true);
  });
});

describe('rotation', () => {
  it('issues the new key and revokes the calling key in one step', async () => {
    const old = await issue('agent-a');
    const res = await svc.post(
      '/device/issue',
      { rotate: true, label: 'next' },
      svc.device(old.device_key),
    );
    expect(res.status).toBe(201);
    expect((await svc.post('/agents/get', {}, svc.device(old.device_key))).status).toBe(401);
    expect((await svc.post('/agents/get', {}, svc.device(res.body.device_key))).status).toBe(200);
    const rotate = (await svc.store.auditEvents(20)).find((e) => e.action === 'device_key.rotate');
    expect(rotate).toMatchObject({
      actor: { kind: 'device', agent_id: 'agent-a', key_id: old.key_id },
      target: { agent_id: 'agent-a', key_id: res.body.key_id },
      details: { revoked_key_id: old.key_id },
    });
  });

  it('settles two concurrent rotations of one key: one wins, the other is refused', async () => {
    const old = await issue('agent-a');
    const results = await Promise.all(
      [1, 2, 3].map(() => svc.post('/device/issue', { rotate: true }, svc.device(old.device_key))),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 401, 401]);
    const keys = await svc.store.find('device_keys', 'agent_id', 'agent-a', 10);
    expect(keys).toHaveLength(2);
    expect(keys.filter((k) => k.doc.revoked_at === null)).toHaveLength(1);
  });
});

describe('/device/revoke', () => {
  it('lets the bridge revoke any key by key_id; the next request with it is refused', async () => {
    const k = await issue('agent-b');
    const res = await svc.post('/device/revoke', { key_id: k.key_id }, svc.bridge);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      key_id: k.key_id,
      agent_id: 'agent-b',
      revoked_at: '2026-01-01T00:00:00.000Z',
    });
    expect((await svc.post('/agents/get', {}, svc.device(k.device_key))).status).toBe(401);
  });

  it('needs key_id with the bridge key; unknown key ids are 404', async () => {
    expect((await svc.post('/device/revoke', {}, svc.bridge)).status).toBe(400);
    const res = await svc.post('/device/revoke', { key_id: 'dk_AAAAAAAAAAAAAAAA' }, svc.bridge);
    expect(res.status).toBe(404);
    expect((await svc.post('/device/revoke', { key_id: 'not-a-key-id' }, svc.bridge)).status).toBe(
      400,
    );
  });

  it('lets a device revoke itself by default, and its own agent other keys', async () => {
    const a1 = await issue('agent-a');
    const a2 = await issue('agent-a');
    const other = await svc.post(
      '/device/revoke',
      { key_id: a2.key_id },
      svc.device(a1.device_key),
    );
    expect(other.status).toBe(200);
    expect((await svc.post('/agents/get', {}, svc.device(a2.device_key))).status).toBe(401);
    const self = await svc.post('/device/revoke', {}, svc.device(a1.device_key));
    expect(self.body.key_id).toBe(a1.key_id);
    expect((await svc.post('/agents/get', {}, svc.device(a1.device_key))).status).toBe(401);
  });

  it("answers 404 for another agent's key and leaves it working", async () => {
    const a = await issue('agent-a');
    const b = await issue('agent-b');
    const res = await svc.post(
      '/device/revoke',
      { key_id: b.key_id, agent_id: 'agent-b' },
      svc.device(a.device_key),
    );
    expect(res.status).toBe(404);
    expect((await svc.post('/agents/get', {}, svc.device(b.device_key))).status).toBe(200);
  });

  it('is idempotent: revoking twice answers the first revoked_at and audits once', async () => {
    const k = await issue('agent-a');
    const first = await svc.post('/device/revoke', { key_id: k.key_id }, svc.bridge);
    clock.advance(5_000);
    const second = await svc.post('/device/revoke', { key_id: k.key_id }, svc.bridge);
    expect(second.status).toBe(200);
    expect(second.body.revoked_at).toBe(first.body.revoked_at);
    const revokes = (await svc.store.auditEvents(20)).filter(
      (e) => e.action === 'device_key.revoke',
    );
    expect(revokes).toHaveLength(1);
  });

  it('refuses every request with a key right after its revoke returns', async () => {
    const k = await issue('agent-a');
    const spare = await issue('agent-a');
    await svc.post('/device/revoke', { key_id: k.key_id }, svc.device(spare.device_key));
    for (const path of ['/agents/get', '/device/issue', '/device/revoke']) {
      expect((await svc.post(path, {}, svc.device(k.device_key))).status).toBe(401);
    }
  });
});
