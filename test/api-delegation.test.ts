/** /delegate and delegated calls over real HTTP, with a frozen clock. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let clock: ManualClock;
let alice: string; // device key of agent-a (the delegator)
let bob: string; // device key of agent-b (the delegate)
let carol: string; // device key of agent-c (a bystander)

beforeEach(async () => {
  clock = manualClock();
  svc = await startTestService({ clock });
  for (const id of ['agent-a', 'agent-b', 'agent-c']) {
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  }
  const issue = async (id: string) =>
    (await svc.post('/device/issue', { agent_id: id }, svc.bridge)).body.device_key as string;
  [alice, bob, carol] = [await issue('agent-a'), await issue('agent-b'), await issue('agent-c')];
  await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-alice-1' }, svc.device(alice));
  await svc.post('/secrets/put', { name: 'other', value: 'alice-other' }, svc.device(alice));
});
afterEach(async () => {
  await svc.close();
});

async function grant(scope: string[], ttl = 600, key = alice) {
  const res = await svc.post(
    '/delegate',
    { to_agent: 'agent-b', scope, ttl_seconds: ttl },
    svc.device(key),
  );
  expect(res.status).toBe(201);
  return res.body as { delegation_id: string; expires_at: string };
}

const via = (key: string, delegationId: string) => ({
  'x-agentpack-device-key': key,
  'x-agentpack-delegation': delegationId,
});

describe('/delegate', () => {
  it('creates a scoped, expiring delegation and audits it', async () => {
    const res = await svc.post(
      '/delegate',
      {
        to_agent: 'agent-b',
        scope: ['secrets/get:openai_key', 'agents/get'],
        ttl_seconds: 600,
        agent_id: 'agent-c',
      },
      svc.device(alice),
    );
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      delegation_id: expect.stringMatching(/^dg_[A-Za-z0-9_-]{22}$/),
      from_agent: 'agent-a',
      to_agent: 'agent-b',
      scope: ['secrets/get:openai_key', 'agents/get'],
      created_at: '2026-01-01T00:00:00.000Z',
      expires_at: '2026-01-01T00:10:00.000Z',
    });
    const event = (await svc.store.auditEvents(50)).find((e) => e.action === 'delegation.create');
    expect(event).toMatchObject({
      actor: { kind: 'device', agent_id: 'agent-a' },
      target: { agent_id: 'agent-b', delegation_id: res.body.delegation_id },
    });
  });

  it.each([
    [[], 'empty scope'],
    [['delegate'], 'delegate itself'],
    [['agents/create'], 'a bridge-only RPC'],
    [['device/issue'], 'a device RPC'],
    [['settings/set'], 'settings'],
    [['secrets/list:x'], 'a resource on a list'],
    [['agents/get:agent-c'], 'a resource on agents/get'],
    [['secrets/get:'], 'an empty resource'],
    [['Secrets/Get'], 'a malformed entry'],
  ])('refuses scope %j (%s) with 400', async (scope) => {
    const res = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope, ttl_seconds: 60 },
      svc.device(alice),
    );
    expect(res.status).toBe(400);
    expect(await svc.store.find('delegations', 'from_agent', 'agent-a', 10)).toEqual([]);
  });

  it('refuses a delegation to itself, to an unknown or disabled agent, and above the max ttl', async () => {
    const post = (body: object) => svc.post('/delegate', body, svc.device(alice));
    expect(
      (await post({ to_agent: 'agent-a', scope: ['agents/get'], ttl_seconds: 60 })).status,
    ).toBe(400);
    expect(
      (await post({ to_agent: 'nobody-here', scope: ['agents/get'], ttl_seconds: 60 })).status,
    ).toBe(404);
    await svc.post('/agents/disable', { agent_id: 'agent-c' }, svc.bridge);
    const disabled = await post({ to_agent: 'agent-c', scope: ['agents/get'], ttl_seconds: 60 });
    expect(disabled.status).toBe(409);
    const long = await post({ to_agent: 'agent-b', scope: ['agents/get'], ttl_seconds: 3601 });
    expect(long.status).toBe(400);
    expect(long.body.error.details.max_ttl_seconds).toBe(3600);
    expect(
      (await post({ to_agent: 'agent-b', scope: ['agents/get'], ttl_seconds: 3600 })).status,
    ).toBe(201);
  });

  it('follows the delegation.max_ttl_seconds setting on the next request', async () => {
    await svc.post('/settings/set', { key: 'delegation.max_ttl_seconds', value: 120 }, svc.bridge);
    const res = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['agents/get'], ttl_seconds: 121 },
      svc.device(alice),
    );
    expect(res.status).toBe(400);
    expect(res.body.error.details.max_ttl_seconds).toBe(120);
  });

  it('never lets a delegated request create a delegation (no transitive authority)', async () => {
    const d = await grant(['secrets/get', 'agents/get']);
    const res = await svc.post(
      '/delegate',
      { to_agent: 'agent-c', scope: ['secrets/get'], ttl_seconds: 60 },
      via(bob, d.delegation_id),
    );
    expect(res.status).toBe(403);
    expect(await svc.store.find('delegations', 'from_agent', 'agent-a', 10)).toHaveLength(1);
  });

  it('refuses the bridge key (a delegation is an agent act)', async () => {
    const res = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['agents/get'], ttl_seconds: 60 },
      svc.bridge,
    );
    expect(res.status).toBe(403);
  });

  it('lets a token holder delegate only within its own token scope', async () => {
    const token = mintTestToken({
      sub: 'agent-a',
      scope: ['delegate', 'secrets/get:openai_key'],
      nowMs: clock.now(),
    });
    const narrow = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get:openai_key'], ttl_seconds: 60 },
      bearer(token),
    );
    expect(narrow.status).toBe(201);
    const wide = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get'], ttl_seconds: 60 },
      bearer(token),
    );
    expect(wide.status).toBe(403);
    const noDelegate = mintTestToken({
      sub: 'agent-a',
      scope: ['secrets/get'],
      nowMs: clock.now(),
    });
    const refused = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get'], ttl_seconds: 60 },
      bearer(noDelegate),
    );
    expect(refused.status).toBe(403);
  });
});

describe('delegated calls', () => {
  it('act for the delegator within scope, and are audited with the whole actor chain', async () => {
    const d = await grant(['secrets/get:openai_key', 'agents/get']);
    const got = await svc.post(
      '/secrets/get',
      { name: 'openai_key', agent_id: 'agent-b' },
      via(bob, d.delegation_id),
    );
    expect(got.status).toBe(200);
    expect(got.body.value).toBe('sk-alice-1');
    const agent = await svc.post('/agents/get', {}, via(bob, d.delegation_id));
    expect(agent.body.agent_id).toBe('agent-a');
    const read = (await svc.store.auditEvents(50)).find(
      (e) => e.action === 'secret.get' && e.actor.via_delegation === d.delegation_id,
    );
    expect(read).toMatchObject({
      actor: {
        kind: 'device',
        agent_id: 'agent-b',
        via_delegation: d.delegation_id,
        for_agent: 'agent-a',
      },
      target: { agent_id: 'agent-a', secret: 'openai_key', version: 1 },
    });
  });

  it('refuse an RPC or a resource outside the scope with 403', async () => {
    const d = await grant(['secrets/get:openai_key']);
    expect(
      (await svc.post('/secrets/get', { name: 'other' }, via(bob, d.delegation_id))).status,
    ).toBe(403);
    expect(
      (
        await svc.post(
          '/secrets/put',
          { name: 'openai_key', value: 'x' },
          via(bob, d.delegation_id),
        )
      ).status,
    ).toBe(403);
    expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(403);
    // Routes that never take a delegation refuse it whatever the scope.
    expect((await svc.post('/device/issue', {}, via(bob, d.delegation_id))).status).toBe(403);
  });

  it('refuse a delegation that is unknown, not addressed to the caller, or malformed with 403/401', async () => {
    const d = await grant(['agents/get']);
    expect((await svc.post('/agents/get', {}, via(carol, d.delegation_id))).status).toBe(403);
    expect((await svc.post('/agents/get', {}, via(bob, 'dg_AAAAAAAAAAAAAAAAAAAAAA'))).status).toBe(
      403,
    );
    expect((await svc.post('/agents/get', {}, via(bob, 'garbage'))).status).toBe(403);
    const alone = await svc.post('/agents/get', {}, { 'x-agentpack-delegation': d.delegation_id });
    expect(alone.status).toBe(401);
    const withBridge = await svc.post(
      '/agents/get',
      { agent_id: 'agent-a' },
      { ...svc.bridge, 'x-agentpack-delegation': d.delegation_id },
    );
    expect(withBridge.status).toBe(400);
  });

  it('stop at expiry', async () => {
    const d = await grant(['agents/get'], 60);
    clock.advance(59_999);
    expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(200);
    clock.advance(1);
    expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(403);
  });

  it('stop on the next request after revoke, by the delegator, the delegate or the bridge', async () => {
    for (const revoker of [() => svc.device(alice), () => svc.device(bob), () => svc.bridge]) {
      const d = await grant(['agents/get']);
      expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(200);
      const res = await svc.post('/delegate/revoke', { delegation_id: d.delegation_id }, revoker());
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        delegation_id: d.delegation_id,
        revoked_at: '2026-01-01T00:00:00.000Z',
      });
      expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(403);
    }
    const revokes = (await svc.store.auditEvents(100)).filter(
      (e) => e.action === 'delegation.revoke',
    );
    expect(revokes).toHaveLength(3);
  });

  it('cannot be revoked by a bystander (404), and revoking twice is idempotent', async () => {
    const d = await grant(['agents/get']);
    expect(
      (await svc.post('/delegate/revoke', { delegation_id: d.delegation_id }, svc.device(carol)))
        .status,
    ).toBe(404);
    expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(200);
    const first = await svc.post(
      '/delegate/revoke',
      { delegation_id: d.delegation_id },
      svc.device(alice),
    );
    clock.advance(1000);
    const second = await svc.post(
      '/delegate/revoke',
      { delegation_id: d.delegation_id },
      svc.device(alice),
    );
    expect(second.body.revoked_at).toBe(first.body.revoked_at);
  });

  it('stop when either agent is disabled', async () => {
    const d = await grant(['agents/get']);
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(403);
    await svc.post('/agents/enable', { agent_id: 'agent-a' }, svc.bridge);
    expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(200);
    await svc.post('/agents/disable', { agent_id: 'agent-b' }, svc.bridge);
    expect((await svc.post('/agents/get', {}, via(bob, d.delegation_id))).status).toBe(403);
  });

  it('with a token as the delegate credential, need both the delegation and the token scope', async () => {
    const d = await grant(['secrets/get']);
    const narrowToken = mintTestToken({
      sub: 'agent-b',
      scope: ['agents/get'],
      nowMs: clock.now(),
    });
    const refused = await svc.post(
      '/secrets/get',
      { name: 'openai_key' },
      { ...bearer(narrowToken), 'x-agentpack-delegation': d.delegation_id },
    );
    expect(refused.status).toBe(403);
    const token = mintTestToken({ sub: 'agent-b', scope: ['secrets/get'], nowMs: clock.now() });
    const ok = await svc.post(
      '/secrets/get',
      { name: 'openai_key' },
      { ...bearer(token), 'x-agentpack-delegation': d.delegation_id },
    );
    expect(ok.status).toBe(200);
    expect(ok.body.value).toBe('sk-alice-1');
  });
});
