/** Ephemeral runs over real HTTP: spawn, run authentication, subtree revocation, well-known. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { newRunKey as newKey, runClient, type Run, type RunClient } from './helpers/runs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let clock: ManualClock;
let dk: string;
beforeEach(async () => {
  clock = manualClock(Date.now());
  svc = await startTestService({ clock });
  rc = runClient(svc, clock);
  for (const id of ['agent-a', 'agent-b'])
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  dk = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-run-1' }, svc.device(dk));
  await svc.post('/secrets/put', { name: 'other', value: 'o-1' }, svc.device(dk));
});
afterEach(async () => {
  await svc.close();
});

let rc: RunClient;
const asRun: RunClient['asRun'] = (...args) => rc.asRun(...args);
const spawn: RunClient['spawn'] = (...args) => rc.spawn(...args);
const identity: RunClient['identity'] = (runId) => rc.identity(runId);

describe('/runs/spawn', () => {
  it('creates a root run with its lineage and scope, and audits it', async () => {
    const root = await spawn(svc.device(dk));
    expect(root.body).toMatchObject({
      run_id: expect.stringMatching(/^run_/),
      agent_id: 'agent-a',
      parent_run_id: null,
      root_run_id: root.run_id,
      lineage: [root.run_id],
      scope: ['secrets/get:openai_key', 'runs/spawn'],
    });
    expect(Date.parse(root.body.expires_at) - Date.parse(root.body.created_at)).toBe(300_000);
    const child = await spawn(root, { scope: ['secrets/get:openai_key'] });
    expect(child.body).toMatchObject({
      parent_run_id: root.run_id,
      root_run_id: root.run_id,
      lineage: [root.run_id, child.run_id],
    });
    const spawns = (await svc.store.auditEvents(100)).filter((e) => e.action === 'run.spawn');
    expect(spawns[1]?.actor).toMatchObject({
      kind: 'run',
      run_id: root.run_id,
      root_run_id: root.run_id,
    });
  });

  it('refuses a scope wider than the spawner (token, parent run) and RPCs a run cannot hold', async () => {
    const token = mintTestToken({
      sub: 'agent-a',
      scope: ['runs/spawn', 'secrets/get:openai_key'],
      nowMs: clock.now(),
    });
    const wide = await svc.post(
      '/runs/spawn',
      { task: 't', scope: ['secrets/get'], ttl_seconds: 60, public_key: newKey().pub },
      bearer(token),
    );
    expect(wide.status).toBe(403);
    expect(
      (
        await svc.post(
          '/runs/spawn',
          {
            task: 't',
            scope: ['secrets/get:openai_key'],
            ttl_seconds: 60,
            public_key: newKey().pub,
          },
          bearer(token),
        )
      ).status,
    ).toBe(201);
    const root = await spawn(svc.device(dk), { scope: ['secrets/get:openai_key', 'runs/spawn'] });
    const child = await asRun(root, '/runs/spawn', {
      task: 't',
      scope: ['secrets/get:other'],
      ttl_seconds: 60,
      public_key: newKey().pub,
    });
    expect(child.status).toBe(403);
    for (const scope of [['delegate'], ['agents/create'], ['device/issue'], ['runs/revoke'], []]) {
      const res = await svc.post(
        '/runs/spawn',
        { task: 't', scope, ttl_seconds: 60, public_key: newKey().pub },
        svc.device(dk),
      );
      expect(res.status, JSON.stringify(scope)).toBe(400);
    }
    // A run without runs/spawn in its scope cannot spawn.
    const leaf = await spawn(svc.device(dk), { scope: ['secrets/get:openai_key'] });
    expect(
      (
        await asRun(leaf, '/runs/spawn', {
          task: 't',
          scope: ['secrets/get:openai_key'],
          ttl_seconds: 60,
          public_key: newKey().pub,
        })
      ).status,
    ).toBe(403);
  });

  it('caps the TTL by the setting and by the parent, and the depth by runs.max_depth', async () => {
    expect(
      (
        await svc.post(
          '/runs/spawn',
          { task: 't', scope: ['agents/get'], ttl_seconds: 901, public_key: newKey().pub },
          svc.device(dk),
        )
      ).status,
    ).toBe(400);
    const root = await spawn(svc.device(dk), { ttl_seconds: 100 });
    clock.advance(10_000);
    const child = await spawn(root, { ttl_seconds: 600 });
    expect(child.body.expires_at).toBe(root.body.expires_at);
    let parent = child;
    for (let depth = 3; depth <= 4; depth++) parent = await spawn(parent);
    const tooDeep = await asRun(parent, '/runs/spawn', {
      task: 't',
      scope: ['secrets/get:openai_key'],
      ttl_seconds: 60,
      public_key: newKey().pub,
    });
    expect(tooDeep.status).toBe(409);
    expect(tooDeep.body.error.details.max_depth).toBe(4);
  });

  it('refuses bad keys and a key already used by another run', async () => {
    const key = newKey();
    for (const public_key of ['', 'x', Buffer.alloc(32).toString('base64url'), `${key.pub}=`]) {
      expect(
        (
          await svc.post(
            '/runs/spawn',
            { task: 't', scope: ['agents/get'], ttl_seconds: 60, public_key },
            svc.device(dk),
          )
        ).status,
      ).toBe(400);
    }
    expect(
      (
        await svc.post(
          '/runs/spawn',
          { task: 't', scope: ['agents/get'], ttl_seconds: 60, public_key: key.pub },
          svc.device(dk),
        )
      ).status,
    ).toBe(201);
    expect(
      (
        await svc.post(
          '/runs/spawn',
          { task: 't', scope: ['agents/get'], ttl_seconds: 60, public_key: key.pub },
          svc.device(dk),
        )
      ).status,
    ).toBe(409);
  });
});

describe('authentication as a run', () => {
  it('acts for its agent within scope with a signed request, and nothing else', async () => {
    const run = await spawn(svc.device(dk));
    const ok = await asRun(run, '/secrets/get', { name: 'openai_key', agent_id: 'agent-b' });
    expect(ok.status).toBe(200);
    expect(ok.body.value).toBe('sk-run-1');
    expect((await asRun(run, '/secrets/get', { name: 'other' })).status).toBe(403);
    expect((await asRun(run, '/secrets/get', { name: 'openai_key' }, { sign: false })).status).toBe(
      401,
    );
    expect(
      (await asRun(run, '/secrets/get', { name: 'openai_key' }, { seed: newKey().seed })).status,
    ).toBe(401);
    expect(
      (await asRun(run, '/secrets/get', { name: 'openai_key' }, { at: clock.now() - 120_000 }))
        .status,
    ).toBe(401);
    const audit = (await svc.store.auditEvents(100)).find(
      (e) => e.action === 'secret.get' && e.actor.kind === 'run',
    );
    expect(audit?.actor).toMatchObject({ run_id: run.run_id, root_run_id: run.run_id });
  });

  it('stops at expiry, completion, revocation and when the agent is disabled', async () => {
    const get = (run: Run) => asRun(run, '/secrets/get', { name: 'openai_key' });
    const expiring = await spawn(svc.device(dk), { ttl_seconds: 60 });
    expect((await get(expiring)).status).toBe(200);
    clock.advance(60_000);
    expect((await get(expiring)).status).toBe(401);

    const completing = await spawn(svc.device(dk));
    const done = await asRun(completing, '/runs/complete', {});
    expect(done.body).toEqual({
      run_id: completing.run_id,
      status: 'completed',
      ended: [completing.run_id],
    });
    expect((await get(completing)).status).toBe(401);

    const revoked = await spawn(svc.device(dk));
    expect(
      (await svc.post('/runs/revoke', { run_id: revoked.run_id }, svc.device(dk))).status,
    ).toBe(200);
    expect((await get(revoked)).status).toBe(401);

    const live = await spawn(svc.device(dk));
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    // Disabling the agent ends its runs for good (revoked), not only while it is disabled.
    expect((await get(live)).status).toBe(401);
    expect((await identity(live.run_id)).body.status).toBe('revoked');
    const events = await svc.store.auditEvents(200);
    expect(events.filter((e) => e.action === 'run.complete')[0]?.actor).toMatchObject({
      run_id: completing.run_id,
      root_run_id: completing.run_id,
    });
  });
});

describe('subtree revocation', () => {
  it('refuses every node of a depth-3, width-3 tree right after the root is revoked', async () => {
    const root = await spawn(svc.device(dk));
    const tree: Run[] = [root];
    const children: Run[] = [];
    for (let i = 0; i < 3; i++) children.push(await spawn(root));
    for (const child of children) for (let i = 0; i < 3; i++) tree.push(await spawn(child));
    tree.push(...children);
    expect(tree).toHaveLength(13);
    for (const run of tree)
      expect((await asRun(run, '/secrets/get', { name: 'openai_key' })).status).toBe(200);
    const res = await svc.post('/runs/revoke', { run_id: root.run_id }, svc.device(dk));
    expect(res.status).toBe(200);
    expect(res.body.revoked).toHaveLength(13);
    expect(res.body.revoked[0]).toBe(root.run_id);
    expect(new Set(res.body.revoked)).toEqual(new Set(tree.map((r) => r.run_id)));
    for (const run of tree) {
      expect((await asRun(run, '/secrets/get', { name: 'openai_key' })).status).toBe(401);
      expect((await identity(run.run_id)).body.status).toBe('revoked');
    }
  });

  it('lets an ancestor revoke a subtree, but not a sibling, a child its parent, or another agent (404)', async () => {
    const root = await spawn(svc.device(dk));
    const a = await spawn(root);
    const b = await spawn(root);
    const a1 = await spawn(a);
    expect((await asRun(b, '/runs/revoke', { run_id: a.run_id })).status).toBe(404);
    expect((await asRun(a1, '/runs/revoke', { run_id: a.run_id })).status).toBe(404);
    const bDevice = (await svc.post('/device/issue', { agent_id: 'agent-b' }, svc.bridge)).body
      .device_key;
    expect((await svc.post('/runs/revoke', { run_id: a.run_id }, svc.device(bDevice))).status).toBe(
      404,
    );
    const res = await asRun(root, '/runs/revoke', { run_id: a.run_id });
    expect(res.body.revoked.sort()).toEqual([a.run_id, a1.run_id].sort());
    expect((await asRun(a1, '/agents/get', {})).status).toBe(401);
    expect((await asRun(b, '/secrets/get', { name: 'openai_key' })).status).toBe(200);
    expect((await svc.post('/runs/revoke', { run_id: b.run_id }, svc.bridge)).status).toBe(200);
  });

  it('also refuses a descendant the batch did not mark (the lineage is checked on use)', async () => {
    const root = await spawn(svc.device(dk));
    const child = await spawn(root);
    // Mark only the root, as if the child had been spawned after the batch was read.
    await svc.store.transact(async (tx) => {
      const doc = await tx.get('runs', root.run_id);
      tx.set('runs', root.run_id, {
        ...doc!,
        ended: 'revoked',
        ended_at: new Date(clock.now()).toISOString(),
      });
    });
    expect((await asRun(child, '/agents/get', {})).status).toBe(401);
    expect((await identity(child.run_id)).body.status).toBe('revoked');
  });
});

describe('GET /.well-known/agentpack-agent-identity/<run_id>', () => {
  it('publishes the public key and the live status, never cached', async () => {
    const run = await spawn(svc.device(dk), { ttl_seconds: 60 });
    const res = await identity(run.run_id);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toEqual({
      run_id: run.run_id,
      agent_id: 'agent-a',
      status: 'active',
      public_key: {
        kty: 'OKP',
        crv: 'Ed25519',
        x: (await svc.store.get('runs', run.run_id))!.public_key,
      },
      root_run_id: run.run_id,
      expires_at: run.body.expires_at,
    });
    const completed = await spawn(svc.device(dk));
    await asRun(completed, '/runs/complete', {});
    expect((await identity(completed.run_id)).body.status).toBe('completed');
    clock.advance(60_000);
    expect((await identity(run.run_id)).body.status).toBe('expired');
    expect((await identity('run_AAAAAAAAAAAAAAAAAAAAAA')).status).toBe(404);
    expect((await identity('..%2F..%2Fagents%2Fget')).status).toBe(404);
    expect((await identity(`${run.run_id}/extra`)).status).toBe(404);
    expect(
      (await svc.request('/.well-known/agentpack-agent-identity/', { method: 'GET' })).status,
    ).toBe(404);
  });
});
