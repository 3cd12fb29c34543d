/**
 * Hardening (0.2), finding 7: a delegated call acts for the delegator only. Every ref of a
 * delegated `/secrets/resolve` must name the delegator's secrets, within the delegation's scope
 * (and the token's); the delegate's own secrets need its own, undelegated request. Over real
 * HTTP.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let alice: string; // agent-a, the delegator
let bob: string; // agent-b, the delegate
let carol: string; // agent-c, a bystander
let delegationId: string;

const ref = (agent: string, name: string) => `agentpack.secret://${agent}/${name}`;

beforeEach(async () => {
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b', 'agent-c']) {
    expect(
      (await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge)).status,
    ).toBe(201);
  }
  const issue = async (id: string) =>
    (await svc.post('/device/issue', { agent_id: id }, svc.bridge)).body.device_key as string;
  [alice, bob, carol] = [await issue('agent-a'), await issue('agent-b'), await issue('agent-c')];
  const put = async (key: string, name: string, value: string) =>
    expect((await svc.post('/secrets/put', { name, value }, svc.device(key))).status).toBe(200);
  await put(alice, 'openai_key', 'sk-alice');
  await put(alice, 'db_password', 'pw-alice');
  // The delegate has a secret of the very name the delegation grants, and one of its own.
  await put(bob, 'openai_key', 'sk-bob');
  await put(bob, 'own', 'bob-own');
  await put(carol, 'openai_key', 'sk-carol');
  const grant = await svc.post(
    '/delegate',
    { to_agent: 'agent-b', scope: ['secrets/resolve:openai_key'], ttl_seconds: 600 },
    svc.device(alice),
  );
  expect(grant.status).toBe(201);
  delegationId = grant.body.delegation_id;
});
afterEach(async () => {
  await svc.close();
});

const delegated = (credential: Record<string, string>) => ({
  ...credential,
  'x-agentpack-delegation': delegationId,
});

async function readsAudited(): Promise<unknown[]> {
  return (await svc.store.auditEvents(500)).filter(
    (e) => e.action === 'secret.resolve' || e.action === 'secret.get',
  );
}

function expectRefused(
  res: { status: number; body: any; text: string },
  index: number,
  leaked: string[],
) {
  expect(res.status).toBe(403);
  expect(res.body.error).toMatchObject({
    code: 'permission_denied',
    details: { index, reason: 'permission_denied' },
  });
  for (const value of leaked) expect(res.text).not.toContain(value);
}

describe('a delegated /secrets/resolve acts for the delegator only (finding 7)', () => {
  it("refuses the delegate's own refs under a delegation (403 with the index) and audits no read", async () => {
    const before = await readsAudited();
    // Its own secret of the very name the delegation grants, and one the delegation never names.
    for (const own of [ref('agent-b', 'openai_key'), ref('agent-b', 'own')]) {
      const res = await svc.post('/secrets/resolve', { refs: [own] }, delegated(svc.device(bob)));
      expectRefused(res, 0, ['sk-bob', 'bob-own']);
    }
    // Mixed with a readable ref of the delegator: all or nothing, nothing read.
    const mixed = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key'), ref('agent-b', 'openai_key')] },
      delegated(svc.device(bob)),
    );
    expectRefused(mixed, 1, ['sk-alice', 'sk-bob']);
    expect(await readsAudited()).toEqual(before);
    // Its own secrets need its own, undelegated request.
    const own = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-b', 'openai_key')] },
      svc.device(bob),
    );
    expect(own.status).toBe(200);
    expect(own.body.values[0].value).toBe('sk-bob');
  });

  it("resolves the delegator's ref within the delegation's scope, audited as the delegator's secret read by the delegate", async () => {
    const res = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key')] },
      delegated(svc.device(bob)),
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      values: [
        { ref: ref('agent-a', 'openai_key'), version: 1, source: 'agent', value: 'sk-alice' },
      ],
    });
    const reads = (await svc.store.auditEvents(500)).filter((e) => e.action === 'secret.resolve');
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({
      target: { agent_id: 'agent-a', secret: 'openai_key', version: 1 },
      actor: {
        kind: 'device',
        agent_id: 'agent-b',
        via_delegation: delegationId,
        for_agent: 'agent-a',
      },
    });
  });

  it("refuses the delegator's refs outside the delegation's scope, and anyone else's", async () => {
    const before = await readsAudited();
    for (const refused of [ref('agent-a', 'db_password'), ref('agent-c', 'openai_key')]) {
      const res = await svc.post(
        '/secrets/resolve',
        { refs: [ref('agent-a', 'openai_key'), refused] },
        delegated(svc.device(bob)),
      );
      expectRefused(res, 1, ['sk-alice', 'pw-alice', 'sk-carol']);
    }
    expect(await readsAudited()).toEqual(before);
  });

  it("holds for a delegate's capability token too, within the token's scope as well", async () => {
    const token = (scope: string[]) =>
      bearer(mintTestToken({ sub: 'agent-b', scope, nowMs: Date.now() }));
    const wide = delegated(token(['secrets/resolve']));
    expectRefused(
      await svc.post('/secrets/resolve', { refs: [ref('agent-b', 'openai_key')] }, wide),
      0,
      ['sk-bob'],
    );
    const ok = await svc.post('/secrets/resolve', { refs: [ref('agent-a', 'openai_key')] }, wide);
    expect(ok.status).toBe(200);
    expect(ok.body.values[0].value).toBe('sk-alice');
    // The delegation grants openai_key, but this token does not: refused.
    const narrow = delegated(token(['secrets/resolve:own']));
    expectRefused(
      await svc.post('/secrets/resolve', { refs: [ref('agent-a', 'openai_key')] }, narrow),
      0,
      ['sk-alice'],
    );
  });

  it('agrees with a delegated /secrets/get, which reads the delegator’s secret of that name', async () => {
    const grant = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get:openai_key'], ttl_seconds: 600 },
      svc.device(alice),
    );
    expect(grant.status).toBe(201);
    const res = await svc.post(
      '/secrets/get',
      { name: 'openai_key' },
      { ...svc.device(bob), 'x-agentpack-delegation': grant.body.delegation_id },
    );
    expect(res.status).toBe(200);
    expect(res.body.value).toBe('sk-alice');
  });
});
