/**
 * The operator plane's lists (/agents/list, /device/list, /delegations/list, /runs/list) over
 * real HTTP, on SQLite and on Firestore (the in-process emulator always; the official one when
 * FIRESTORE_EMULATOR_HOST is set): pages that stay right while items are added between reads,
 * the filters, who may list what, bad cursors and limits, and nothing secret in any answer.
 * The upgrade of documents from before the lists: test/api-upgrade-order-keys.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { manualClock } from './helpers/clock.js';
import { storeBackends } from './helpers/store-backends.js';
import { runClient, type RunClient } from './helpers/runs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';
import { encodeCursor } from '../functions/src/core/paging.js';

const backends = storeBackends('lists');

describe.each(backends)('lists: $name', { timeout: 120_000 }, (backend) => {
  let svc: TestService;
  let runs: RunClient;
  const clock = manualClock(Date.parse('2026-03-01T00:00:00.000Z'));
  const secrets: string[] = [];
  let dkA: string;
  let dkB: string;

  async function start(): Promise<void> {
    const store = backend.store();
    svc = await startTestService({ clock, ...(store === undefined ? {} : { store }) });
    runs = runClient(svc, clock);
    for (const id of ['agent-m', 'agent-a', 'agent-b']) await createAgent(id);
    dkA = await issue('agent-a');
    dkB = await issue('agent-b');
  }
  afterEach(async () => {
    // Nothing secret in any answer: no device key, nor the digest that names it in the store.
    for (const key of secrets) {
      for (const text of svc.responses.filter((t) => !t.includes('"device_key"'))) {
        expect(text).not.toContain(key);
        expect(text).not.toContain(svc.digest('device_key', key));
      }
    }
    secrets.length = 0;
    await svc?.close();
  });

  async function createAgent(id: string): Promise<void> {
    clock.advance(1000);
    const res = await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
    expect(res.status).toBe(201);
  }
  async function issue(agentId: string, label?: string): Promise<string> {
    clock.advance(1000);
    const body = { agent_id: agentId, ...(label === undefined ? {} : { label }) };
    const res = await svc.post('/device/issue', body, svc.bridge);
    expect(res.status).toBe(201);
    secrets.push(res.body.device_key);
    return res.body.device_key;
  }
  async function delegate(from: string, to: string, ttl = 600): Promise<string> {
    clock.advance(1000);
    const body = { to_agent: to, scope: ['agents/get'], ttl_seconds: ttl };
    const res = await svc.post('/delegate', body, svc.device(from));
    expect(res.status).toBe(201);
    return res.body.delegation_id;
  }

  /** Every page of a list, calling `between` after each page but the last. */
  async function all(
    path: string,
    field: string,
    body: Record<string, unknown>,
    headers: Record<string, string>,
    between: (page: number) => Promise<void> = async () => {},
  ): Promise<any[]> {
    const items: any[] = [];
    let cursor: string | null | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await svc.post(path, { ...body, ...(cursor ? { cursor } : {}) }, headers);
      expect(res.status, res.text).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual([field, 'next_cursor'].sort());
      items.push(...res.body[field]);
      cursor = res.body.next_cursor;
      if (cursor === null) return items;
      await between(page);
    }
    throw new Error('too many pages');
  }

  it('/agents/list pages by agent_id, with agents added on both sides of the cursor meanwhile', async () => {
    await start();
    for (const id of ['agent-d', 'agent-f', 'agent-h', 'agent-j']) await createAgent(id);
    // After each page, one agent sorting after the cursor (to be listed) and one before it.
    const after = ['agent-c', 'agent-e', 'agent-y', 'agent-z'];
    const seen = await all('/agents/list', 'agents', { limit: 2 }, svc.bridge, async (page) => {
      if (page >= after.length) return;
      await createAgent(after[page]!);
      await createAgent(`agent-0${page}`);
    });
    const ids = seen.map((a) => a.agent_id);
    const initial = 'agent-a agent-b agent-d agent-f agent-h agent-j agent-m'.split(' ');
    expect(ids).toEqual([...initial, ...after].sort());
    expect(seen[0]).toMatchObject({
      agent_id: 'agent-a',
      display_name: 'agent-a',
      disabled: false,
    });

    expect((await svc.post('/agents/disable', { agent_id: 'agent-h' }, svc.bridge)).status).toBe(
      200,
    );
    const disabled = await svc.post('/agents/list', { disabled: true }, svc.bridge);
    expect(disabled.body).toEqual({
      agents: [expect.objectContaining({ agent_id: 'agent-h', disabled: true })],
      next_cursor: null,
    });
    const enabled = await all('/agents/list', 'agents', { disabled: false, limit: 50 }, svc.bridge);
    expect(enabled.map((a) => a.agent_id)).not.toContain('agent-h');
    const every = await all('/agents/list', 'agents', {}, svc.bridge);
    expect(enabled.map((a) => a.agent_id)).toEqual(
      every.map((a) => a.agent_id).filter((id) => id !== 'agent-h'),
    );
    expect((await svc.post('/agents/list', {}, svc.device(dkA))).status).toBe(403);
  });

  it('/device/list pages by creation time with keys issued between pages; revoked keys on request', async () => {
    await start();
    const first = [
      dkA,
      await issue('agent-a', 'laptop'),
      await issue('agent-a'),
      await issue('agent-a'),
    ];
    await issue('agent-b');
    const later: string[] = [];
    const keys = await all(
      '/device/list',
      'keys',
      { agent_id: 'agent-a', limit: 2 },
      svc.bridge,
      async () => {
        later.push(await issue('agent-a'));
      },
    );
    expect(keys.length).toBe(first.length + later.length);
    expect(new Set(keys.map((k) => k.key_id)).size).toBe(keys.length);
    const times = keys.map((k) => k.created_at);
    expect(times).toEqual([...times].sort());
    expect(keys.every((k) => k.agent_id === 'agent-a')).toBe(true);
    expect(keys[1]).toEqual({
      key_id: expect.stringMatching(/^dk_/),
      agent_id: 'agent-a',
      label: 'laptop',
      created_at: expect.any(String),
      expires_at: null,
      revoked_at: null,
      enrolled: false,
      fingerprint: null,
    });

    // A device key lists its own agent's keys: another agent_id is ignored, not obeyed.
    const own = await all('/device/list', 'keys', { agent_id: 'agent-a' }, svc.device(dkB));
    expect(own.map((k) => k.agent_id)).toEqual(['agent-b', 'agent-b']);

    const revoked = await svc.post('/device/revoke', { key_id: keys[1].key_id }, svc.bridge);
    expect(revoked.status).toBe(200);
    const live = await all('/device/list', 'keys', {}, svc.device(dkA));
    expect(live.map((k) => k.key_id)).not.toContain(keys[1].key_id);
    expect(live).toHaveLength(keys.length - 1);
    const withRevoked = await all(
      '/device/list',
      'keys',
      { include_revoked: true },
      svc.device(dkA),
    );
    expect(withRevoked.find((k) => k.key_id === keys[1].key_id).revoked_at).toBe(
      revoked.body.revoked_at,
    );

    expect((await svc.post('/device/list', {}, svc.bridge)).status).toBe(400);
    const nobody = await svc.post('/device/list', { agent_id: 'agent-nobody' }, svc.bridge);
    expect([nobody.status, nobody.body.error.code]).toEqual([404, 'not_found']);
    const token = mintTestToken({ sub: 'agent-a', scope: ['runs/list'], nowMs: clock.now() });
    expect((await svc.post('/device/list', {}, bearer(token))).status).toBe(403);
  });

  it('/delegations/list: from, to, both; live only unless include_inactive; never delegated', async () => {
    await start();
    await createAgent('agent-c');
    const dkC = await issue('agent-c');
    const ab = await delegate(dkA, 'agent-b');
    const ba = await delegate(dkB, 'agent-a');
    const ac = await delegate(dkA, 'agent-c', 60);
    const cb = await delegate(dkC, 'agent-b');
    const revokedAb = await delegate(dkA, 'agent-b');
    expect(
      (await svc.post('/delegate/revoke', { delegation_id: revokedAb }, svc.device(dkA))).status,
    ).toBe(200);
    clock.advance(120_000); // ac has expired

    const ids = async (body: Record<string, unknown>, headers = svc.device(dkA)) =>
      (await all('/delegations/list', 'delegations', body, headers)).map((d) => d.delegation_id);
    expect(await ids({})).toEqual([ab, ba]);
    expect(await ids({ direction: 'from' })).toEqual([ab]);
    expect(await ids({ direction: 'to' })).toEqual([ba]);
    expect(await ids({ include_inactive: true, limit: 1 })).toEqual([ab, ba, ac, revokedAb]);
    expect(await ids({ direction: 'to', agent_id: 'agent-b' }, svc.bridge)).toEqual([ab, cb]);
    const listed = await svc.post('/delegations/list', { include_inactive: true }, svc.device(dkA));
    expect(listed.body.delegations[3]).toEqual({
      delegation_id: revokedAb,
      from_agent: 'agent-a',
      to_agent: 'agent-b',
      scope: ['agents/get'],
      created_at: expect.any(String),
      expires_at: expect.any(String),
      revoked_at: expect.any(String),
    });

    // Added between pages, after the cursor: listed; no repeats.
    const more: string[] = [];
    const paged = await all(
      '/delegations/list',
      'delegations',
      { limit: 1 },
      svc.device(dkA),
      async (page) => {
        if (page < 2)
          more.push(await delegate(page === 0 ? dkB : dkA, page === 0 ? 'agent-a' : 'agent-c'));
      },
    );
    expect(paged.map((d) => d.delegation_id)).toEqual([ab, ba, ...more]);

    const token = (scope: string[]) =>
      bearer(mintTestToken({ sub: 'agent-a', scope, nowMs: clock.now() }));
    expect(await ids({ direction: 'from' }, token(['delegations/list']))).toEqual([ab, more[1]]);
    expect((await svc.post('/delegations/list', {}, token(['agents/get']))).status).toBe(403);
    const viaDelegation = { 'x-agentpack-device-key': dkB, 'x-agentpack-delegation': ab };
    const delegated = await svc.post('/delegations/list', {}, viaDelegation);
    expect([delegated.status, delegated.body.error.code]).toEqual([403, 'permission_denied']);
    expect((await svc.post('/runs/list', {}, viaDelegation)).status).toBe(403);
  });

  it('/runs/list: active by default, ended, all, one tree; a run with the RPC in scope lists its own tree', async () => {
    await start();
    const scope = ['runs/spawn', 'runs/list', 'agents/get'];
    const root = await runs.spawn(svc.device(dkA), { scope });
    clock.advance(1000);
    const child = await runs.spawn(root, { scope: ['runs/list'] });
    clock.advance(1000);
    const done = await runs.spawn(svc.device(dkA), { scope });
    clock.advance(1000);
    const gone = await runs.spawn(svc.device(dkA), { scope });
    clock.advance(1000);
    const other = await runs.spawn(svc.device(dkB), { scope });
    expect((await runs.asRun(done, '/runs/complete', {})).status).toBe(200);
    expect((await svc.post('/runs/revoke', { run_id: gone.run_id }, svc.bridge)).status).toBe(200);

    const list = async (body: Record<string, unknown>, headers = svc.device(dkA)) =>
      (await all('/runs/list', 'runs', body, headers)).map((r) => [r.run_id, r.status]);
    expect(await list({})).toEqual([
      [root.run_id, 'active'],
      [child.run_id, 'active'],
    ]);
    expect(await list({ status: 'ended' })).toEqual([
      [done.run_id, 'completed'],
      [gone.run_id, 'revoked'],
    ]);
    expect(await list({ status: 'all', limit: 1 })).toHaveLength(4);
    expect(await list({ status: 'all', root_run_id: root.run_id })).toHaveLength(2);
    // Another agent's tree lists as empty, as a tree that does not exist.
    expect(await list({ root_run_id: other.run_id })).toEqual([]);
    expect(await list({ agent_id: 'agent-b' }, svc.bridge)).toEqual([[other.run_id, 'active']]);

    // A run sees its own tree only: not its agent's other trees, nor another agent's.
    const byRun = await runs.asRun(child, '/runs/list', { status: 'all', agent_id: 'agent-b' });
    expect(byRun.status).toBe(200);
    expect(byRun.body.runs.map((r: any) => r.run_id)).toEqual([root.run_id, child.run_id]);
    const otherTree = await runs.asRun(child, '/runs/list', { root_run_id: done.run_id });
    expect(otherTree.body).toEqual({ runs: [], next_cursor: null });
    expect(byRun.body.runs[1]).toEqual({
      run_id: child.run_id,
      agent_id: 'agent-a',
      parent_run_id: root.run_id,
      root_run_id: root.run_id,
      task: 'summarise inbox',
      scope: ['runs/list'],
      status: 'active',
      created_at: expect.any(String),
      expires_at: expect.any(String),
    });
    expect((await runs.asRun(done, '/runs/list', {})).status).toBe(401);
    const noScope = await runs.spawn(svc.device(dkA), { scope: ['agents/get'] });
    expect((await runs.asRun(noScope, '/runs/list', {})).status).toBe(403);

    // Expired: an active run lists as ended once its time is up.
    clock.advance(400_000);
    expect(await list({})).toEqual([]);
    expect((await list({ status: 'ended' })).map(([, s]) => s)).toEqual([
      'expired',
      'expired',
      'completed',
      'revoked',
      'expired',
    ]);
  });

  it('refuses a bad cursor or limit with 400, whatever the list', async () => {
    await start();
    for (let i = 0; i < 3; i++) await issue('agent-a');
    const page = await svc.post('/device/list', { limit: 2 }, svc.device(dkA));
    const cursor: string = page.body.next_cursor;
    expect(cursor).toEqual(expect.any(String));
    const [payload, check] = cursor.split('.') as [string, string];
    const flipped = `${payload.slice(0, 5)}${payload[5] === 'A' ? 'B' : 'A'}${payload.slice(6)}.${check}`;
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), k: 'zzz' }),
    ).toString('base64url');
    const deviceQuery = { agent_id: 'agent-a', include_revoked: false };
    const bad: Array<[string, Record<string, unknown>, Record<string, string>]> = [
      ['/device/list', { cursor: 'garbage' }, svc.device(dkA)],
      ['/device/list', { cursor: flipped }, svc.device(dkA)],
      ['/device/list', { cursor: `${forged}.${check}` }, svc.device(dkA)],
      ['/device/list', { cursor: cursor.slice(0, -3) }, svc.device(dkA)],
      ['/device/list', { cursor: `${cursor}.x` }, svc.device(dkA)],
      ['/device/list', { cursor: '' }, svc.device(dkA)],
      ['/device/list', { cursor: 7 }, svc.device(dkA)],
      // The right cursor for another route, another agent or other filters.
      ['/runs/list', { cursor }, svc.device(dkA)],
      ['/agents/list', { cursor }, svc.bridge],
      ['/device/list', { cursor }, svc.device(dkB)],
      ['/device/list', { cursor, include_revoked: true }, svc.device(dkA)],
      // A well-formed cursor whose key is not a list key (rebuilt by hand, digest and all).
      [
        '/device/list',
        { cursor: encodeCursor('device/list', deviceQuery, '\u0000') },
        svc.device(dkA),
      ],
      [
        '/agents/list',
        { cursor: encodeCursor('agents/list', { disabled: undefined }, 'Not An Agent') },
        svc.bridge,
      ],
    ];
    for (const limit of [0, 201, -1, 1.5, '5', null]) {
      bad.push(['/device/list', { limit }, svc.device(dkA)]);
      bad.push(['/agents/list', { limit }, svc.bridge]);
    }
    for (const [path, body, headers] of bad) {
      const res = await svc.post(path, body, headers);
      expect([res.status, res.body?.error?.code], `${path} ${JSON.stringify(body)}`).toEqual([
        400,
        'invalid_argument',
      ]);
      expect(res.body.error.details.field).toBe('cursor' in body ? 'cursor' : 'limit');
    }
    // The same hand-built cursors with keys of the right shape are taken (so the 400s above are
    // for the key alone).
    const handMade = encodeCursor('device/list', deviceQuery, '2000-01-01T00:00:00.000Z|dk_x');
    expect((await svc.post('/device/list', { cursor: handMade }, svc.device(dkA))).status).toBe(
      200,
    );
    const agentCursor = encodeCursor('agents/list', { disabled: undefined }, 'agent-a');
    expect((await svc.post('/agents/list', { cursor: agentCursor }, svc.bridge)).status).toBe(200);
    const next = await svc.post('/device/list', { limit: 2, cursor }, svc.device(dkA));
    expect(next.status).toBe(200);
    expect(next.body.keys).toHaveLength(2);
    const full = await svc.post('/device/list', { limit: 200 }, svc.device(dkA));
    expect([full.body.keys.length, full.body.next_cursor]).toEqual([4, null]);
    const dflt = await svc.post('/agents/list', {}, svc.bridge);
    expect([dflt.body.agents.length, dflt.body.next_cursor]).toEqual([3, null]);
  });
});
