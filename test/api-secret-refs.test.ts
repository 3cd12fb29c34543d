/** /secrets/resolve: references resolved under the caller's rights, all or nothing. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let a: string;
let b: string;
beforeEach(async () => {
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b'])
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  a = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  b = (await svc.post('/device/issue', { agent_id: 'agent-b' }, svc.bridge)).body.device_key;
  await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-a-1' }, svc.device(a));
  await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-a-2' }, svc.device(a));
  await svc.post('/secrets/put', { name: 'db_password', value: 'pw-a' }, svc.device(a));
  await svc.post('/secrets/put', { name: 'own', value: 'b-own' }, svc.device(b));
});
afterEach(async () => {
  await svc.close();
});

const ref = (agent: string, name: string, version?: number) =>
  `agentpack.secret://${agent}/${name}${version === undefined ? '' : `#${version}`}`;

describe('/secrets/resolve', () => {
  it('resolves the caller own refs in order, current or pinned version', async () => {
    const refs = [
      ref('agent-a', 'db_password'),
      ref('agent-a', 'openai_key', 1),
      ref('agent-a', 'openai_key'),
    ];
    const res = await svc.post('/secrets/resolve', { refs }, svc.device(a));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      values: [
        { ref: refs[0], version: 1, source: 'agent', value: 'pw-a' },
        { ref: refs[1], version: 1, source: 'agent', value: 'sk-a-1' },
        { ref: refs[2], version: 2, source: 'agent', value: 'sk-a-2' },
      ],
    });
    const audited = (await svc.store.auditEvents(100)).filter((e) => e.action === 'secret.resolve');
    expect(audited).toHaveLength(3);
  });

  it('fails the whole call with the index and reason of the first ref it cannot resolve', async () => {
    const other = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key'), ref('agent-b', 'own')] },
      svc.device(a),
    );
    expect(other.status).toBe(403);
    expect(other.body.error.details).toEqual({ index: 1, reason: 'permission_denied' });
    expect(other.text).not.toContain('sk-a-2');
    const missing = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key'), ref('agent-a', 'nope')] },
      svc.device(a),
    );
    expect(missing.status).toBe(404);
    expect(missing.body.error.details).toEqual({ index: 1, reason: 'not_found' });
    expect(missing.text).not.toContain('sk-a-2');
    await svc.post('/secrets/delete', { name: 'db_password' }, svc.device(a));
    const deleted = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'db_password')] },
      svc.device(a),
    );
    expect(deleted.body.error.details).toEqual({ index: 0, reason: 'deleted' });
    for (const bad of [
      'openai_key',
      'agentpack.secret://agent-a',
      'agentpack.secret://agent-a/x#0',
      'agentpack.secret://A/x',
      'https://agent-a/x',
    ]) {
      const res = await svc.post(
        '/secrets/resolve',
        { refs: [ref('agent-a', 'openai_key'), bad] },
        svc.device(a),
      );
      expect(res.status, bad).toBe(400);
      expect(res.body.error.details).toEqual({ index: 1, reason: 'malformed' });
    }
    // Nothing was audited for the failed calls.
    expect(
      (await svc.store.auditEvents(100)).filter((e) => e.action === 'secret.resolve'),
    ).toHaveLength(0);
  });

  it("resolves a delegator's secret through a delegation naming it, never the delegate's own", async () => {
    const d = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get:openai_key'], ttl_seconds: 60 },
      svc.device(a),
    );
    const headers = { ...svc.device(b), 'x-agentpack-delegation': d.body.delegation_id };
    const ok = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key')] },
      headers,
    );
    expect(ok.status).toBe(200);
    expect(ok.body.values.map((v: any) => v.value)).toEqual(['sk-a-2']);
    // A delegated call acts for the delegator only: the delegate's own secrets need its own call.
    const own = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key'), ref('agent-b', 'own')] },
      headers,
    );
    expect(own.status).toBe(403);
    expect(own.body.error.details).toEqual({ index: 1, reason: 'permission_denied' });
    const outOfScope = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'db_password')] },
      headers,
    );
    expect(outOfScope.status).toBe(403);
    expect(outOfScope.body.error.details).toEqual({ index: 0, reason: 'permission_denied' });
  });

  it('checks each ref against a token scope: secrets/get (or secrets/resolve) of that secret', async () => {
    const token = mintTestToken({
      sub: 'agent-a',
      scope: ['secrets/get:openai_key'],
      nowMs: Date.now(),
    });
    const ok = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key')] },
      bearer(token),
    );
    expect(ok.status).toBe(200);
    const refused = await svc.post(
      '/secrets/resolve',
      { refs: [ref('agent-a', 'openai_key'), ref('agent-a', 'db_password')] },
      bearer(token),
    );
    expect(refused.status).toBe(403);
    expect(refused.body.error.details).toEqual({ index: 1, reason: 'permission_denied' });
    const resolveScope = mintTestToken({
      sub: 'agent-a',
      scope: ['secrets/resolve'],
      nowMs: Date.now(),
    });
    expect(
      (
        await svc.post(
          '/secrets/resolve',
          { refs: [ref('agent-a', 'db_password')] },
          bearer(resolveScope),
        )
      ).status,
    ).toBe(200);
  });
});
