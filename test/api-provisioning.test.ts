/**
 * Operators provision, agents read (operator plane, 0.2), over real HTTP: the bridge key with
 * `agent_id` puts, lists, inspects, deletes, undeletes and destroys an agent's secrets, audited
 * with the bridge as actor, and is never given a value (`/secrets/get` and `/secrets/resolve`
 * with it: 403 `write_only`, nothing read, nothing audited as a read).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../functions/src/ports/audit-event.js';
import { BRIDGE_KEY_2, startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
let alice: string; // device key of agent-a
let bob: string; // device key of agent-b

beforeEach(async () => {
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b']) {
    expect(
      (await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge)).status,
    ).toBe(201);
  }
  const issue = async (id: string) =>
    (await svc.post('/device/issue', { agent_id: id }, svc.bridge)).body.device_key as string;
  [alice, bob] = [await issue('agent-a'), await issue('agent-b')];
});
afterEach(async () => {
  await svc.close();
});

const op = (path: string, body: object) => svc.post(path, body, svc.bridge);
const asAgent = (key: string, path: string, body: object) => svc.post(path, body, svc.device(key));

async function secretEvents(): Promise<AuditEvent[]> {
  return (await svc.store.auditEvents(1000)).filter((e) => e.category === 'secrets');
}

describe('write-only provisioning by the bridge key', () => {
  it('puts an agent secret the agent then reads; audited with the bridge as actor', async () => {
    const put = await op('/secrets/put', {
      agent_id: 'agent-a',
      name: 'openai_key',
      value: 'sk-operator-1',
    });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ name: 'openai_key', version: 1, created_at: expect.any(String) });
    expect(put.text).not.toContain('sk-operator-1');
    // The agent reads what the operator put; another agent does not see it.
    expect((await asAgent(alice, '/secrets/get', { name: 'openai_key' })).body).toMatchObject({
      name: 'openai_key',
      version: 1,
      value: 'sk-operator-1',
    });
    expect((await asAgent(bob, '/secrets/get', { name: 'openai_key' })).status).toBe(404);
    const [write] = (await secretEvents()).filter((e) => e.action === 'secret.put');
    expect(write!.actor).toEqual({ kind: 'bridge', bridge_key_id: expect.any(String) });
    expect(write!.target).toEqual({ agent_id: 'agent-a', secret: 'openai_key', version: 1 });
    const [read] = (await secretEvents()).filter((e) => e.action === 'secret.get');
    expect(read!.actor).toMatchObject({ kind: 'device', agent_id: 'agent-a' });
    expect(JSON.stringify(await svc.store.auditEvents(1000))).not.toContain('sk-operator-1');
  });

  it('honours cas, lists and inspects without values, deletes, undeletes and destroys', async () => {
    await op('/secrets/put', { agent_id: 'agent-a', name: 'db', value: 'pw-1', cas: 0 });
    const stale = await op('/secrets/put', { agent_id: 'agent-a', name: 'db', value: 'x', cas: 0 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.details).toEqual({ current_version: 1 });
    const v2 = await op('/secrets/put', { agent_id: 'agent-a', name: 'db', value: 'pw-2', cas: 1 });
    expect(v2.body.version).toBe(2);
    // The agent's own writes and the operator's are one history.
    await asAgent(alice, '/secrets/put', { name: 'mine', value: 'agent-written' });

    const list = await op('/secrets/list', { agent_id: 'agent-a' });
    expect(list.status).toBe(200);
    expect(list.body.secrets.map((s: any) => [s.name, s.current_version])).toEqual([
      ['db', 2],
      ['mine', 1],
    ]);
    expect((await op('/secrets/list', { agent_id: 'agent-b' })).body).toEqual({ secrets: [] });
    const meta = await op('/secrets/metadata', { agent_id: 'agent-a', name: 'db' });
    expect(meta.body).toMatchObject({ name: 'db', current_version: 2 });
    expect(meta.body.versions.map((v: any) => v.version)).toEqual([1, 2]);
    expect(meta.body.readers).toBeUndefined();
    for (const res of [list, meta]) {
      for (const value of ['pw-1', 'pw-2', 'agent-written']) expect(res.text).not.toContain(value);
    }

    const del = await op('/secrets/delete', { agent_id: 'agent-a', name: 'db' });
    expect(del.body).toEqual({ name: 'db', versions: [2] });
    expect((await asAgent(alice, '/secrets/get', { name: 'db' })).body.error.details).toEqual({
      name: 'db',
      version: 2,
      reason: 'deleted',
    });
    expect((await op('/secrets/undelete', { agent_id: 'agent-a', name: 'db' })).status).toBe(200);
    expect((await asAgent(alice, '/secrets/get', { name: 'db' })).body.value).toBe('pw-2');
    const destroy = await op('/secrets/destroy', {
      agent_id: 'agent-a',
      name: 'db',
      versions: [1],
    });
    expect(destroy.body).toEqual({ name: 'db', versions: [1] });
    expect(await svc.store.get('secret_versions', 'agent-a:db:1')).toBeNull();
    const gone = await asAgent(alice, '/secrets/get', { name: 'db', version: 1 });
    expect(gone.body.error.details.reason).toBe('destroyed');

    const byBridge = (await secretEvents()).filter((e) => e.actor.kind === 'bridge');
    expect(byBridge.map((e) => `${e.action} ${e.target.version}`).sort()).toEqual([
      'secret.delete 2',
      'secret.destroy 1',
      'secret.put 1',
      'secret.put 2',
      'secret.undelete 2',
    ]);
    for (const e of byBridge) expect(e.target).toMatchObject({ agent_id: 'agent-a', secret: 'db' });
  });

  it('audits a prune caused by an operator write with the bridge as actor', async () => {
    expect((await op('/settings/set', { key: 'secrets.max_versions', value: 1 })).status).toBe(200);
    await op('/secrets/put', { agent_id: 'agent-a', name: 'p', value: 'one' });
    await op('/secrets/put', { agent_id: 'agent-a', name: 'p', value: 'two' });
    const prune = (await secretEvents()).find((e) => e.action === 'secret.prune');
    expect(prune).toMatchObject({
      actor: { kind: 'bridge' },
      target: { agent_id: 'agent-a', secret: 'p', version: 1 },
    });
  });

  it('never reads a value: /secrets/get and /secrets/resolve with the bridge are 403 write_only', async () => {
    await op('/secrets/put', { agent_id: 'agent-a', name: 'openai_key', value: 'sk-never-out' });
    const before = await secretEvents();
    for (const headers of [svc.bridge, { 'x-agentpack-key': BRIDGE_KEY_2 }]) {
      for (const [path, body] of [
        ['/secrets/get', { name: 'openai_key' }],
        ['/secrets/get', { name: 'openai_key', agent_id: 'agent-a' }],
        ['/secrets/get', { name: 'openai_key', owner: '_shared' }],
        ['/secrets/resolve', { refs: ['agentpack.secret://agent-a/openai_key'] }],
        [
          '/secrets/resolve',
          { refs: ['agentpack.secret://_shared/openai_key'], fallback: 'shared' },
        ],
      ] as const) {
        const res = await svc.post(path, body, headers);
        expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(403);
        expect(res.body.error).toMatchObject({
          code: 'permission_denied',
          message: expect.stringContaining('never reads a value'),
          details: { reason: 'write_only' },
        });
        expect(res.text).not.toContain('sk-never-out');
      }
    }
    // Nothing was read: no audit row of a read, nothing at all.
    expect(await secretEvents()).toEqual(before);
  });

  it('requires agent_id with the bridge key (400), and refuses a bad one before anything', async () => {
    for (const [path, body] of [
      ['/secrets/put', { name: 'n', value: 'v' }],
      ['/secrets/list', {}],
      ['/secrets/metadata', { name: 'n' }],
      ['/secrets/delete', { name: 'n' }],
      ['/secrets/undelete', { name: 'n' }],
      ['/secrets/destroy', { name: 'n', versions: [1] }],
    ] as const) {
      const res = await op(path, body);
      expect(res.status, path).toBe(400);
      expect(res.body.error.details).toMatchObject({ field: 'agent_id' });
    }
    for (const agentId of ['Agent-A', 'ab', '_other', '_shared/x', '', 42, null, 'a'.repeat(64)]) {
      const res = await op('/secrets/put', { agent_id: agentId, name: 'n', value: 'v' });
      expect(res.status, String(agentId)).toBe(400);
    }
    const extra = await op('/secrets/put', {
      agent_id: 'agent-a',
      name: 'n',
      value: 'v',
      owner: 'agent-a',
    });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toContain('unknown field');
    expect(await svc.store.find('secrets', 'agent_id', 'agent-a', 10)).toEqual([]);
  });

  it('answers 404 for an agent that does not exist, and writes nothing', async () => {
    for (const [path, body] of [
      ['/secrets/put', { agent_id: 'agent-z', name: 'n', value: 'v' }],
      ['/secrets/list', { agent_id: 'agent-z' }],
      ['/secrets/metadata', { agent_id: 'agent-z', name: 'n' }],
      ['/secrets/delete', { agent_id: 'agent-z', name: 'n' }],
      ['/secrets/undelete', { agent_id: 'agent-z', name: 'n' }],
      ['/secrets/destroy', { agent_id: 'agent-z', name: 'n', versions: [1] }],
    ] as const) {
      const res = await op(path, body);
      expect(res.status, path).toBe(404);
      expect(res.body.error).toMatchObject({
        code: 'not_found',
        message: 'no such agent',
        details: { agent_id: 'agent-z' },
      });
    }
    expect(await svc.store.find('secrets', 'agent_id', 'agent-z', 10)).toEqual([]);
    expect(await secretEvents()).toEqual([]);
  });

  it('acts for no disabled agent (403), and again once it is enabled', async () => {
    await op('/secrets/put', { agent_id: 'agent-a', name: 'db', value: 'pw' });
    expect((await op('/agents/disable', { agent_id: 'agent-a' })).status).toBe(200);
    const before = await secretEvents();
    for (const [path, body] of [
      ['/secrets/put', { agent_id: 'agent-a', name: 'db', value: 'new' }],
      ['/secrets/list', { agent_id: 'agent-a' }],
      ['/secrets/metadata', { agent_id: 'agent-a', name: 'db' }],
      ['/secrets/delete', { agent_id: 'agent-a', name: 'db' }],
      ['/secrets/destroy', { agent_id: 'agent-a', name: 'db', versions: [1] }],
    ] as const) {
      const res = await op(path, body);
      expect(res.status, path).toBe(403);
      expect(res.body.error).toMatchObject({
        code: 'permission_denied',
        details: { agent_id: 'agent-a' },
      });
    }
    expect(await secretEvents()).toEqual(before);
    expect((await svc.store.get('secrets', 'agent-a:db'))!.current_version).toBe(1);
    expect((await op('/agents/enable', { agent_id: 'agent-a' })).status).toBe(200);
    expect(
      (await op('/secrets/put', { agent_id: 'agent-a', name: 'db', value: 'new' })).status,
    ).toBe(200);
  });

  it('provisions nothing for a retired agent (403), whose secrets are gone', async () => {
    await op('/secrets/put', { agent_id: 'agent-b', name: 'db', value: 'pw-retired' });
    const retired = await op('/agents/retire', { agent_id: 'agent-b', confirm: 'agent-b' });
    expect(retired.status).toBe(200);
    for (const [path, body] of [
      ['/secrets/put', { agent_id: 'agent-b', name: 'db', value: 'again' }],
      ['/secrets/list', { agent_id: 'agent-b' }],
      ['/secrets/undelete', { agent_id: 'agent-b', name: 'db', versions: [1] }],
    ] as const) {
      expect((await op(path, body)).status, path).toBe(403);
    }
    expect(await svc.store.get('secret_versions', 'agent-b:db:2')).toBeNull();
  });

  it('keeps agent-bound callers to their own agent: a body agent_id is ignored', async () => {
    // A device key naming another agent (or the shared owner) still writes its own secret.
    for (const agentId of ['agent-a', '_shared']) {
      const res = await asAgent(bob, '/secrets/put', { agent_id: agentId, name: 'n', value: 'b' });
      expect(res.status).toBe(200);
    }
    expect((await svc.store.get('secrets', 'agent-b:n'))!.current_version).toBe(2);
    expect(await svc.store.get('secrets', 'agent-a:n')).toBeNull();
    expect(await svc.store.get('secrets', '_shared:n')).toBeNull();
    const list = await asAgent(bob, '/secrets/list', { agent_id: 'agent-a' });
    expect(list.body.secrets.map((s: any) => s.name)).toEqual(['n']);
  });
});
