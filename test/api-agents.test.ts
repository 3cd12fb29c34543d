/** /agents/* over real HTTP against the local server on SQLite. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_ID_PATTERN } from '@agentpack-identity/protocol';
import { BRIDGE_KEY_2, startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
beforeEach(async () => {
  svc = await startTestService();
});
afterEach(async () => {
  await svc.close();
});

async function issueKey(agentId: string): Promise<string> {
  const res = await svc.post('/device/issue', { agent_id: agentId }, svc.bridge);
  expect(res.status).toBe(201);
  return res.body.device_key as string;
}

describe('/agents/create', () => {
  it('mints an agent with the chosen id, 201, and audits it', async () => {
    const res = await svc.post(
      '/agents/create',
      { display_name: 'Mail bot', agent_id: 'mail-bot' },
      svc.bridge,
    );
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      agent_id: 'mail-bot',
      display_name: 'Mail bot',
      disabled: false,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    const events = await svc.store.auditEvents(10);
    expect(events).toEqual([
      expect.objectContaining({
        category: 'auth',
        action: 'agent.create',
        actor: expect.objectContaining({
          kind: 'bridge',
          bridge_key_id: expect.stringMatching(/^bk_/),
        }),
        target: { agent_id: 'mail-bot' },
      }),
    ]);
  });

  it('generates an id matching the agent id grammar when none is given', async () => {
    const res = await svc.post('/agents/create', { display_name: 'x' }, svc.bridge);
    expect(res.status).toBe(201);
    expect(res.body.agent_id).toMatch(AGENT_ID_PATTERN);
  });

  it('refuses a taken id with 409 already_exists and changes nothing', async () => {
    await svc.post('/agents/create', { display_name: 'one', agent_id: 'dup-agent' }, svc.bridge);
    const res = await svc.post(
      '/agents/create',
      { display_name: 'two', agent_id: 'dup-agent' },
      svc.bridge,
    );
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('already_exists');
    const got = await svc.post('/agents/get', { agent_id: 'dup-agent' }, svc.bridge);
    expect(got.body.display_name).toBe('one');
    expect(await svc.store.auditEvents(10)).toHaveLength(1);
  });

  it.each([
    [{ display_name: 'x', agent_id: 'UPPER' }, 'agent_id'],
    [{ display_name: 'x', agent_id: 'ab' }, 'agent_id'],
    [{ display_name: '' }, 'display_name'],
    [{ display_name: '   ' }, 'display_name'],
    [{ display_name: 7 }, 'display_name'],
    [{}, 'display_name'],
  ])('refuses %j with 400 naming the field', async (body, field) => {
    const res = await svc.post('/agents/create', body, svc.bridge);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_argument');
    expect(res.body.error.details.field).toBe(field);
  });

  it('refuses an unknown field with 400', async () => {
    const res = await svc.post('/agents/create', { display_name: 'x', admin: true }, svc.bridge);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('admin');
  });

  it('accepts every configured bridge key (rotation)', async () => {
    const res = await svc.post(
      '/agents/create',
      { display_name: 'x' },
      { 'x-agentpack-key': BRIDGE_KEY_2 },
    );
    expect(res.status).toBe(201);
  });

  it('refuses a device key with 403 and never runs the handler', async () => {
    await svc.post('/agents/create', { display_name: 'a', agent_id: 'agent-a' }, svc.bridge);
    const key = await issueKey('agent-a');
    const res = await svc.post(
      '/agents/create',
      { display_name: 'evil', agent_id: 'evil-agent' },
      svc.device(key),
    );
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('permission_denied');
    expect(await svc.store.get('agents', 'evil-agent')).toBeNull();
  });
});

describe('/agents/get', () => {
  beforeEach(async () => {
    await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
    await svc.post('/agents/create', { display_name: 'B', agent_id: 'agent-b' }, svc.bridge);
  });

  it('lets the bridge read any agent and needs agent_id', async () => {
    const res = await svc.post('/agents/get', { agent_id: 'agent-b' }, svc.bridge);
    expect(res.status).toBe(200);
    expect(res.body.display_name).toBe('B');
    const missing = await svc.post('/agents/get', {}, svc.bridge);
    expect(missing.status).toBe(400);
    expect(missing.body.error.details.field).toBe('agent_id');
  });

  it('answers 404 for an unknown agent', async () => {
    const res = await svc.post('/agents/get', { agent_id: 'nobody-here' }, svc.bridge);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('gives a device key its own agent; a forged agent_id is ignored', async () => {
    const key = await issueKey('agent-a');
    const own = await svc.post('/agents/get', {}, svc.device(key));
    expect(own.body.agent_id).toBe('agent-a');
    const forged = await svc.post('/agents/get', { agent_id: 'agent-b' }, svc.device(key));
    expect(forged.status).toBe(200);
    expect(forged.body.agent_id).toBe('agent-a');
    expect(forged.body.display_name).toBe('A');
    // Even a malformed agent_id is dropped, not validated, for a bound caller.
    const junk = await svc.post('/agents/get', { agent_id: 42 }, svc.device(key));
    expect(junk.body.agent_id).toBe('agent-a');
  });
});

describe('/agents/disable and /agents/enable', () => {
  beforeEach(async () => {
    await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
  });

  it('stops the agent device keys on the very next request, and enable restores them', async () => {
    const key = await issueKey('agent-a');
    expect((await svc.post('/agents/get', {}, svc.device(key))).status).toBe(200);
    const off = await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect(off.status).toBe(200);
    expect(off.body.disabled).toBe(true);
    const refused = await svc.post('/agents/get', {}, svc.device(key));
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('permission_denied');
    const issue = await svc.post('/device/issue', {}, svc.device(key));
    expect(issue.status).toBe(403);
    const on = await svc.post('/agents/enable', { agent_id: 'agent-a' }, svc.bridge);
    expect(on.body.disabled).toBe(false);
    expect((await svc.post('/agents/get', {}, svc.device(key))).status).toBe(200);
    const actions = (await svc.store.auditEvents(20)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['agent.disable', 'agent.enable']));
  });

  it('refuses to issue a key to a disabled agent', async () => {
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    const res = await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge);
    expect(res.status).toBe(403);
    expect(await svc.store.find('device_keys', 'agent_id', 'agent-a', 10)).toEqual([]);
  });

  it('is idempotent: disabling twice writes one audit event', async () => {
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    const again = await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect(again.status).toBe(200);
    const disables = (await svc.store.auditEvents(20)).filter((e) => e.action === 'agent.disable');
    expect(disables).toHaveLength(1);
  });

  it('answers 404 for an unknown agent and 400 without agent_id', async () => {
    expect(
      (await svc.post('/agents/disable', { agent_id: 'nobody-here' }, svc.bridge)).status,
    ).toBe(404);
    expect((await svc.post('/agents/enable', {}, svc.bridge)).status).toBe(400);
  });
});
