/**
 * Subtrees end whole (hardening finding 1): revoke, complete, agent disable and a device key's
 * revoke end every run they cover, whatever the size of the tree (larger than one page of the
 * walk) and whatever order the store returns documents in, on SQLite and on Firestore (the
 * in-process emulator always; the official one when FIRESTORE_EMULATOR_HOST is set). The
 * answers and the audit list exactly the runs whose state changed.
 */
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { RUN_BATCH } from '../functions/src/core/run-tree.js';
import { manualClock } from './helpers/clock.js';
import { storeBackends } from './helpers/store-backends.js';
import { interruptible } from './helpers/interruptible-store.js';
import { runClient, type Run, type RunClient } from './helpers/runs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

/** Children under one root: more than a page of the walk everywhere. */
const backends = storeBackends('run-trees').map((b) => ({
  ...b,
  children: b.kind === 'sqlite' ? 405 : 205,
}));

// Hundreds of signed spawns over HTTP: minutes on a loaded two-core machine, not seconds.
describe.each(backends)('run trees end whole: $name', { timeout: 240_000 }, (backend) => {
  let svc: TestService;
  let runs: RunClient;
  let dk: string;
  const clock = manualClock(Date.now());

  async function start(): Promise<void> {
    const own = backend.store();
    svc = await startTestService({ clock, ...(own === undefined ? {} : { store: own }) });
    runs = runClient(svc, clock);
    await svc.post('/agents/create', { display_name: 'a', agent_id: 'agent-a' }, svc.bridge);
    dk = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
    await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-1' }, svc.device(dk));
  }
  afterEach(async () => {
    await svc?.close();
  });

  const read = (run: Run) => runs.asRun(run, '/secrets/get', { name: 'openai_key' });
  const status = async (run: Run) => (await runs.identity(run.run_id)).body.status;

  async function bigTree(): Promise<{ root: Run; kids: Run[] }> {
    const root = await runs.spawn(svc.device(dk));
    const kids: Run[] = [];
    for (let i = 0; i < backend.children; i++) {
      kids.push(await runs.spawn(root, { scope: ['secrets/get:openai_key', 'runs/spawn'] }));
    }
    expect(backend.children).toBeGreaterThan(RUN_BATCH);
    return { root, kids };
  }

  it('revoke of the last child of a big tree ends it; revoke of the root ends the rest', async () => {
    await start();
    const { root, kids } = await bigTree();
    const last = kids.at(-1)!;
    const grandchild = await runs.spawn(last, { scope: ['secrets/get:openai_key'] });
    const one = await svc.post('/runs/revoke', { run_id: last.run_id }, svc.device(dk));
    expect(one.status).toBe(200);
    expect(one.body.revoked).toEqual([last.run_id, grandchild.run_id]);
    expect((await read(last)).status).toBe(401);
    expect(await status(last)).toBe('revoked');
    expect(await status(grandchild)).toBe('revoked');
    expect((await read(kids[0]!)).status).toBe(200);

    // Again: nothing changes, nothing is listed.
    const again = await svc.post('/runs/revoke', { run_id: last.run_id }, svc.bridge);
    expect(again.body.revoked).toEqual([]);

    const all = await svc.post('/runs/revoke', { run_id: root.run_id }, svc.bridge);
    expect(all.status).toBe(200);
    expect(all.body.revoked).toHaveLength(backend.children);
    expect(all.body.revoked[0]).toBe(root.run_id);
    expect(new Set(all.body.revoked)).toEqual(
      new Set([root.run_id, ...kids.slice(0, -1).map((k) => k.run_id)]),
    );
    for (const kid of [kids[0]!, kids[RUN_BATCH]!, kids.at(-2)!])
      expect(await status(kid)).toBe('revoked');

    // The audit names exactly the runs whose state changed, each once.
    const events = (await svc.store.auditEvents(10_000)).filter((e) => e.action === 'run.revoke');
    const named = events.flatMap((e) => String(e.details?.['run_ids'] ?? '').split(' '));
    expect(named.sort()).toEqual(
      [root.run_id, ...kids.map((k) => k.run_id), grandchild.run_id].sort(),
    );
    const counted = events.reduce((n, e) => n + Number(e.details?.['ended']), 0);
    expect(counted).toBe(backend.children + 2);
  });

  it('/runs/complete of a child in a big tree ends it and only its subtree', async () => {
    await start();
    const { root, kids } = await bigTree();
    const child = kids[kids.length - 3]!;
    const below = await runs.spawn(child, { scope: ['secrets/get:openai_key'] });
    const done = await runs.asRun(child, '/runs/complete', {});
    expect(done.status).toBe(200);
    expect(done.body.ended).toEqual([child.run_id, below.run_id]);
    expect(await status(child)).toBe('completed');
    expect(await status(below)).toBe('completed');
    expect((await read(below)).status).toBe(401);
    expect(await status(root)).toBe('active');
    expect(await status(kids.at(-1)!)).toBe('active');
  });

  it('disabling the agent ends every live run of it, and revoking a key ends the trees it spawned', async () => {
    await start();
    const dk2 = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body
      .device_key;
    const byOne = await runs.spawn(svc.device(dk));
    const byTwo = await runs.spawn(svc.device(dk2));
    const underTwo = await runs.spawn(byTwo, { scope: ['secrets/get:openai_key'] });
    const keyTwo = (await svc.post('/device/revoke', {}, svc.device(dk2))).body;
    expect(keyTwo.revoked_at).toEqual(expect.any(String));
    expect(await status(byTwo)).toBe('revoked');
    expect(await status(underTwo)).toBe('revoked');
    expect((await read(underTwo)).status).toBe(401);
    expect(await status(byOne)).toBe('active');
    const cascade = (await svc.store.auditEvents(1000)).find(
      (e) => e.action === 'run.revoke' && e.details?.['cause'] === 'device_key.revoke',
    );
    expect(cascade?.details?.['ended']).toBe(2);

    const off = await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect(off.status).toBe(200);
    expect(await status(byOne)).toBe('revoked');
    // Enabling the agent again brings no run back.
    await svc.post('/agents/enable', { agent_id: 'agent-a' }, svc.bridge);
    expect(await status(byOne)).toBe('revoked');
    expect((await read(byOne)).status).toBe(401);
  });

  it('enabling an agent whose disable was cut short first ends the runs it missed', async () => {
    const tmp = tempDir();
    onTestFinished(() => tmp.remove());
    const store = interruptible(
      backend.store() ?? openSqliteStore({ file: `${tmp.dir}/s.sqlite` }),
    );
    svc = await startTestService({ clock, store });
    runs = runClient(svc, clock);
    await svc.post('/agents/create', { display_name: 'a', agent_id: 'agent-a' }, svc.bridge);
    dk = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
    await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-1' }, svc.device(dk));
    const live = await runs.spawn(svc.device(dk));
    store.arm(1); // the disable commits; its run walk does not
    expect((await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge)).status).toBe(
      500,
    );
    store.disarm();
    expect((await svc.store.get('runs', live.run_id))?.ended).toBeNull();
    // Not reached by the walk, yet it reads as what it is: its agent is disabled.
    expect(await status(live)).toBe('revoked');
    expect((await svc.post('/agents/enable', { agent_id: 'agent-a' }, svc.bridge)).status).toBe(
      200,
    );
    expect(await status(live)).toBe('revoked');
    expect((await read(live)).status).toBe(401);
  });

  it('the disable walk also ends a run written before live runs were indexed', async () => {
    await start();
    const live = await runs.spawn(svc.device(dk));
    const doc = (await svc.store.get('runs', live.run_id))!;
    const { live_agent_id: _live, list_key: _key, ...older } = doc;
    await svc.store.transact(async (tx) => tx.set('runs', live.run_id, older));
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect((await svc.store.get('runs', live.run_id))?.ended).toBe('revoked');
  });
});
