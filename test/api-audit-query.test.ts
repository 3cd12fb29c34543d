/**
 * /audit/query over real HTTP, on SQLite and on Firestore (the in-process emulator always; the
 * official one when FIRESTORE_EMULATOR_HOST is set): the log oldest first in pages that stay
 * right while events are added between reads, the event shape, the filters (agent, run, action,
 * category, time), the scan budget, bad input, and nothing secret in any event.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SCAN_FACTOR } from '../functions/src/core/paging.js';
import { manualClock } from './helpers/clock.js';
import { storeBackends } from './helpers/store-backends.js';
import { runClient, type RunClient } from './helpers/runs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

const backends = storeBackends('audit-query');

const SECRET_VALUE = 'sk-audit-never-shown-0123456789';

describe.each(backends)('audit query: $name', { timeout: 120_000 }, (backend) => {
  let svc: TestService;
  let runs: RunClient;
  const clock = manualClock(Date.parse('2026-04-01T00:00:00.000Z'));
  let dkA: string;
  let dkB: string;

  async function start(): Promise<void> {
    const store = backend.store();
    svc = await startTestService({ clock, ...(store === undefined ? {} : { store }) });
    runs = runClient(svc, clock);
    await createAgent('agent-a');
    await createAgent('agent-b');
    dkA = await issue('agent-a');
    dkB = await issue('agent-b');
    clock.advance(1000);
    const put = { name: 'openai_key', value: SECRET_VALUE };
    expect((await svc.post('/secrets/put', put, svc.device(dkA))).status).toBe(200);
  }
  afterEach(async () => {
    // Nothing secret in any answer of the audit query: no value, no device key, no digest.
    const answers = svc.responses.filter((t) => t.includes('"events"'));
    for (const text of answers) {
      expect(text).not.toContain(SECRET_VALUE);
      for (const key of [dkA, dkB]) {
        expect(text).not.toContain(key);
        expect(text).not.toContain(svc.digest('device_key', key));
      }
    }
    await svc?.close();
  });

  async function createAgent(id: string): Promise<void> {
    clock.advance(1000);
    const res = await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
    expect(res.status).toBe(201);
  }
  async function issue(agentId: string): Promise<string> {
    clock.advance(1000);
    const res = await svc.post('/device/issue', { agent_id: agentId }, svc.bridge);
    expect(res.status).toBe(201);
    return res.body.device_key;
  }

  /** Every page of a query, calling `between` after each page but the last. */
  async function query(
    body: Record<string, unknown>,
    between: (page: number) => Promise<void> = async () => {},
  ): Promise<{ events: any[]; pages: number }> {
    const events: any[] = [];
    let cursor: string | null | undefined;
    for (let page = 1; page <= 200; page++) {
      const res = await svc.post(
        '/audit/query',
        { ...body, ...(cursor ? { cursor } : {}) },
        svc.bridge,
      );
      expect(res.status, res.text).toBe(200);
      events.push(...res.body.events);
      cursor = res.body.next_cursor;
      if (cursor === null) return { events, pages: page };
      await between(page);
    }
    throw new Error('too many pages');
  }
  const actions = (events: any[]) => events.map((e) => e.action);

  it('pages the log oldest first, with events added between pages: none skipped, none repeated', async () => {
    await start();
    for (const id of ['agent-c', 'agent-d', 'agent-e', 'agent-f']) await createAgent(id);
    let added = 0;
    const paged = await query({ limit: 3 }, async (page) => {
      if (page <= 4) {
        await createAgent(`agent-new-${page}`);
        added++;
      }
    });
    const whole = (await query({ limit: 200 })).events;
    expect(added).toBeGreaterThan(1);
    expect(whole).toHaveLength(9 + added);
    expect(paged.events.map((e) => e.event_id)).toEqual(whole.map((e) => e.event_id));
    expect(new Set(whole.map((e) => e.event_id)).size).toBe(whole.length);
    const times = whole.map((e) => e.at);
    expect(times).toEqual([...times].sort());
    expect(whole[0]).toEqual({
      event_id: expect.any(String),
      at: '2026-04-01T00:00:01.000Z',
      category: 'auth',
      action: 'agent.create',
      actor: { kind: 'bridge', bridge_key_id: expect.stringMatching(/^bk_[0-9a-f]{12}$/) },
      target: { agent_id: 'agent-a' },
    });
    expect(whole.find((e) => e.action === 'secret.put')).toMatchObject({
      category: 'secrets',
      actor: { kind: 'device', agent_id: 'agent-a', key_id: expect.stringMatching(/^dk_/) },
      target: { agent_id: 'agent-a', secret: 'openai_key', version: 1 },
    });
    // The last page is whole: a null cursor, never a dangling one.
    const last = await svc.post('/audit/query', { limit: whole.length }, svc.bridge);
    expect([last.body.events.length, last.body.next_cursor]).toEqual([whole.length, null]);
  });

  it('filters by agent (actor, delegator or target), run tree, action, category and time', async () => {
    await start();
    clock.advance(1000);
    const grant = { to_agent: 'agent-b', scope: ['secrets/get'], ttl_seconds: 600 };
    const delegation = (await svc.post('/delegate', grant, svc.device(dkA))).body.delegation_id;
    clock.advance(1000);
    const viaDelegation = { 'x-agentpack-device-key': dkB, 'x-agentpack-delegation': delegation };
    expect((await svc.post('/secrets/get', { name: 'openai_key' }, viaDelegation)).status).toBe(
      200,
    );
    clock.advance(1000);
    const root = await runs.spawn(svc.device(dkA));
    clock.advance(1000);
    const child = await runs.spawn(root, { scope: ['secrets/get:openai_key'] });
    clock.advance(1000);
    expect((await runs.asRun(child, '/secrets/get', { name: 'openai_key' })).status).toBe(200);
    clock.advance(1000);
    await createAgent('agent-c');

    const byB = (await query({ agent_id: 'agent-b', limit: 2 })).events;
    expect(actions(byB)).toEqual([
      'agent.create',
      'device_key.issue',
      'delegation.create',
      'secret.get',
    ]);
    expect(byB[3].actor).toEqual({
      kind: 'device',
      agent_id: 'agent-b',
      key_id: expect.any(String),
      via_delegation: delegation,
      for_agent: 'agent-a',
    });
    const byA = (await query({ agent_id: 'agent-a' })).events;
    const names = (e: any) => [e.actor.agent_id, e.actor.for_agent, e.target.agent_id];
    expect(byA.every((e) => names(e).includes('agent-a'))).toBe(true);
    expect(actions(byA).filter((a) => a === 'secret.get')).toHaveLength(2);
    expect(byA.map((e) => e.target.agent_id)).not.toContain('agent-c');

    const tree = (await query({ run_id: root.run_id })).events;
    expect(actions(tree)).toEqual(['run.spawn', 'run.spawn', 'secret.get']);
    expect(tree[0]).toMatchObject({ run_id: root.run_id, root_run_id: root.run_id });
    expect(tree[2]).toMatchObject({
      run_id: child.run_id,
      root_run_id: root.run_id,
      actor: { kind: 'run', run_id: child.run_id },
    });
    expect(actions((await query({ run_id: child.run_id })).events)).toEqual([
      'run.spawn',
      'secret.get',
    ]);

    const reads = (await query({ action: 'secret.get' })).events;
    expect(reads.map((e) => e.actor.kind)).toEqual(['device', 'run']);
    expect(reads.every((e) => !('value' in (e.details ?? {})))).toBe(true);
    const secretEvents = (await query({ category: 'secrets', agent_id: 'agent-a' })).events;
    expect(actions(secretEvents)).toEqual(['secret.put', 'secret.get', 'secret.get']);

    // since is inclusive, until exclusive; offsets are read as the instants they name.
    const whole = (await query({})).events;
    const at = (i: number) => whole[i].at as string;
    const window = (await query({ since: at(2), until: at(5) })).events;
    expect(window.map((e) => e.event_id)).toEqual(whole.slice(2, 5).map((e) => e.event_id));
    const shifted = at(2).replace('T00:', 'T02:').replace('.000Z', '+02:00');
    expect((await query({ since: shifted })).events).toEqual(whole.slice(2));
    expect((await query({ until: at(0) })).events).toEqual([]);
    expect((await query({ since: '9999-12-31T23:00:00-05:00' })).events).toEqual([]);
    expect((await query({ until: '9999-12-31T23:00:00-05:00' })).events).toEqual(whole);
  });

  it('reads at most the scan budget per page: a filter matching little still pages to the end', async () => {
    await start();
    for (let i = 0; i < 12; i++) await createAgent(`agent-x${i}`);
    const total = (await query({})).events.length;
    const first = await svc.post('/audit/query', { action: 'agent.disable', limit: 1 }, svc.bridge);
    expect(first.body.events).toEqual([]);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const none = await query({ action: 'agent.disable', limit: 1 });
    expect(none.events).toEqual([]);
    expect(none.pages).toBe(Math.ceil(total / SCAN_FACTOR));
    await svc.post('/agents/disable', { agent_id: 'agent-x3' }, svc.bridge);
    const one = await query({ action: 'agent.disable', limit: 1 });
    expect(one.events.map((e) => e.target.agent_id)).toEqual(['agent-x3']);
  });

  it('refuses bad input (400) and every caller but the bridge (403)', async () => {
    await start();
    const page = await svc.post('/audit/query', { limit: 2 }, svc.bridge);
    const cursor = page.body.next_cursor as string;
    const agentsCursor = (await svc.post('/agents/list', { limit: 1 }, svc.bridge)).body
      .next_cursor;
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ since: '2026-04-01T00:00:05Z', until: '2026-04-01T00:00:05Z' }, 'until'],
      [{ since: '2026-04-01T00:00:06Z', until: '2026-04-01T00:00:05Z' }, 'until'],
      [{ since: 'yesterday' }, 'since'],
      [{ until: '2026-04-01' }, 'until'],
      [{ since: '2026-02-30T00:00:00Z' }, 'since'],
      [{ since: '2026-04-01T00:00:00.0001Z' }, 'since'],
      [{ action: 'Secret.Get' }, 'action'],
      [{ action: 'x'.repeat(65) }, 'action'],
      [{ category: 'nope' }, 'category'],
      [{ agent_id: 'Agent A' }, 'agent_id'],
      [{ run_id: 'run_x' }, 'run_id'],
      [{ limit: 0 }, 'limit'],
      [{ limit: 201 }, 'limit'],
      [{ cursor: 'garbage' }, 'cursor'],
      [{ cursor: agentsCursor }, 'cursor'],
      [{ cursor, action: 'secret.get' }, 'cursor'],
      [
        { cursor: `${cursor.slice(0, 8)}${cursor[8] === 'A' ? 'B' : 'A'}${cursor.slice(9)}` },
        'cursor',
      ],
      [{ extra: 1 }, ''],
    ];
    for (const [body, field] of bad) {
      const res = await svc.post('/audit/query', body, svc.bridge);
      expect([res.status, res.body.error.code], JSON.stringify(body)).toEqual([
        400,
        'invalid_argument',
      ]);
      if (field !== '') expect(res.body.error.details.field, JSON.stringify(body)).toBe(field);
    }
    expect((await svc.post('/audit/query', { limit: 2, cursor }, svc.bridge)).status).toBe(200);
    const token = mintTestToken({ sub: 'agent-a', scope: ['runs/list'], nowMs: clock.now() });
    for (const headers of [svc.device(dkA), bearer(token), {}]) {
      const res = await svc.post('/audit/query', {}, headers);
      expect(res.status).toBe(Object.keys(headers).length === 0 ? 401 : 403);
    }
  });
});
