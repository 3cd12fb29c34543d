/** /secrets/put and /secrets/get over real HTTP: versions, cas, encryption at rest. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
let a: string;
let b: string;
beforeEach(async () => {
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b'])
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  a = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  b = (await svc.post('/device/issue', { agent_id: 'agent-b' }, svc.bridge)).body.device_key;
});
afterEach(async () => {
  await svc.close();
});

const put = (key: string, body: object) => svc.post('/secrets/put', body, svc.device(key));
const get = (key: string, body: object) => svc.post('/secrets/get', body, svc.device(key));

describe('/secrets/put and /secrets/get', () => {
  it('writes versions from 1 and reads the current or a given version', async () => {
    const v1 = await put(a, { name: 'openai_key', value: 'sk-one' });
    expect(v1.status).toBe(200);
    expect(v1.body).toEqual({ name: 'openai_key', version: 1, created_at: expect.any(String) });
    expect((await put(a, { name: 'openai_key', value: 'sk-two' })).body.version).toBe(2);
    expect((await get(a, { name: 'openai_key' })).body).toMatchObject({
      name: 'openai_key',
      version: 2,
      value: 'sk-two',
    });
    expect((await get(a, { name: 'openai_key', version: 1 })).body.value).toBe('sk-one');
    expect((await get(a, { name: 'openai_key', version: 3 })).status).toBe(404);
    expect((await get(a, { name: 'missing' })).status).toBe(404);
  });

  it('keeps agents apart: the same name is a different secret, and agent_id is ignored', async () => {
    await put(a, { name: 'token', value: 'a-value' });
    await put(b, { name: 'token', value: 'b-value', agent_id: 'agent-a' });
    expect((await get(a, { name: 'token' })).body.value).toBe('a-value');
    expect((await get(b, { name: 'token', agent_id: 'agent-a' })).body.value).toBe('b-value');
  });

  it('honours cas: 0 only if absent, n only if current, else 409 with current_version', async () => {
    expect((await put(a, { name: 's', value: '1', cas: 0 })).status).toBe(200);
    const again = await put(a, { name: 's', value: '2', cas: 0 });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: 'failed_precondition',
      details: { current_version: 1 },
    });
    expect((await put(a, { name: 's', value: '2', cas: 1 })).body.version).toBe(2);
    const stale = await put(a, { name: 's', value: '3', cas: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.details.current_version).toBe(2);
    expect((await get(a, { name: 's' })).body.value).toBe('2');
  });

  it('gives concurrent writers distinct versions, and exactly one winner for one cas', async () => {
    const plain = await Promise.all(
      Array.from({ length: 8 }, (_, i) => put(a, { name: 'race', value: `v${i}` })),
    );
    expect(plain.map((r) => r.body.version).sort((x, y) => x - y)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8,
    ]);
    const cas = await Promise.all(
      Array.from({ length: 8 }, (_, i) => put(a, { name: 'race', value: `c${i}`, cas: 8 })),
    );
    expect(cas.filter((r) => r.status === 200)).toHaveLength(1);
    expect(cas.filter((r) => r.status === 409)).toHaveLength(7);
  });

  it('stores values encrypted: never in clear in the database files, bound to their record', async () => {
    const value = 'sk-very-secret-value-0123456789';
    await put(a, { name: 'openai_key', value });
    for (const file of readdirSync(svc.dataDir)) {
      expect(readFileSync(join(svc.dataDir, file)).includes(Buffer.from(value)), file).toBe(false);
    }
    const doc = await svc.store.get('secret_versions', 'agent-a:openai_key:1');
    expect(doc).toMatchObject({
      version: 1,
      kek_ref: expect.stringMatching(/^local:/),
    });
    // Move the ciphertext to another record: it must not decrypt there.
    await put(a, { name: 'other', value: 'x' });
    await svc.store.transact(async (tx) => {
      const other = await tx.get('secret_versions', 'agent-a:other:1');
      tx.set('secret_versions', 'agent-a:other:1', { ...other!, ...pick(doc!) });
    });
    const moved = await get(a, { name: 'other' });
    expect(moved.status).toBe(500);
    expect(moved.text).not.toContain(value);
  });

  it('refuses bad names, oversized and non-string values, with nothing written', async () => {
    for (const body of [
      { name: '', value: 'x' },
      { name: '.hidden', value: 'x' },
      { name: 'a/b', value: 'x' },
      { name: 'x'.repeat(129), value: 'x' },
      { name: 'n', value: 42 },
      { name: 'n', value: 'x'.repeat(32 * 1024 + 1) },
      { name: 'n', value: 'x', cas: -1 },
    ]) {
      expect((await put(a, body)).status, JSON.stringify(body).slice(0, 60)).toBe(400);
    }
    expect(await svc.store.find('secrets', 'agent_id', 'agent-a', 10)).toEqual([]);
  });

  it('audits every put and get by name and version, never the value', async () => {
    await put(a, { name: 'audited', value: 'the-value-123' });
    await get(a, { name: 'audited' });
    const events = (await svc.store.auditEvents(50)).filter((e) => e.category === 'secrets');
    expect(events.map((e) => e.action).sort()).toEqual(['secret.get', 'secret.put']);
    for (const e of events)
      expect(e.target).toEqual({ agent_id: 'agent-a', secret: 'audited', version: 1 });
    expect(JSON.stringify(await svc.store.auditEvents(50))).not.toContain('the-value-123');
  });
});

function pick(doc: { ciphertext: string; iv: string; tag: string; wrapped_key: string }) {
  return { ciphertext: doc.ciphertext, iv: doc.iv, tag: doc.tag, wrapped_key: doc.wrapped_key };
}
