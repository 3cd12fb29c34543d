/**
 * Shared secrets (operator plane, 0.2), over real HTTP: the reserved owner `_shared`, managed by
 * the bridge key; explicit grants; reads by `owner: "_shared"` and by the
 * `agentpack.secret://_shared/<name>` ref (also sealed); scope resources `_shared/<name>`;
 * `fallback: "shared"`; delegated reads; not granted and not found alike.
 */
import { generateDeviceKeys, openSealed } from '@agentpack-identity/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../functions/src/ports/audit-event.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let alice: string; // agent-a: granted
let bob: string; // agent-b: not granted

const SHARED = '_shared';
const ref = (owner: string, name: string, version?: number) =>
  `agentpack.secret://${owner}/${name}${version === undefined ? '' : `#${version}`}`;
const op = (path: string, body: object) => svc.post(path, body, svc.bridge);
const grant = (name: string, agents: string[]) => op('/secrets/grant', { name, agents });
const getShared = (headers: Record<string, string>, name: string, extra: object = {}) =>
  svc.post('/secrets/get', { name, owner: SHARED, ...extra }, headers);
const resolve = (headers: Record<string, string>, refs: string[], extra: object = {}) =>
  svc.post('/secrets/resolve', { refs, ...extra }, headers);
const token = (sub: string, scope: string[]) =>
  bearer(mintTestToken({ sub, scope, nowMs: Date.now() }));

async function reads(): Promise<AuditEvent[]> {
  return (await svc.store.auditEvents(1000)).filter(
    (e) => e.action === 'secret.get' || e.action === 'secret.resolve',
  );
}

beforeEach(async () => {
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b', 'agent-c']) {
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  }
  const issue = async (id: string) =>
    (await svc.post('/device/issue', { agent_id: id }, svc.bridge)).body.device_key as string;
  [alice, bob] = [await issue('agent-a'), await issue('agent-b')];
  for (const value of ['sk-shared-1', 'sk-shared-2']) {
    expect((await op('/secrets/put', { agent_id: SHARED, name: 'openai_key', value })).status).toBe(
      200,
    );
  }
  expect((await grant('openai_key', ['agent-a'])).body).toEqual({
    name: 'openai_key',
    readers: ['agent-a'],
  });
});
afterEach(async () => {
  await svc.close();
});

describe('shared secrets: grants and reads', () => {
  it('lets a granted agent read by owner and by ref; audits the reader and _shared:<name>', async () => {
    const got = await getShared(svc.device(alice), 'openai_key');
    expect(got.status).toBe(200);
    expect(got.body).toEqual({
      name: 'openai_key',
      owner: SHARED,
      version: 2,
      value: 'sk-shared-2',
      created_at: expect.any(String),
    });
    expect((await getShared(svc.device(alice), 'openai_key', { version: 1 })).body.value).toBe(
      'sk-shared-1',
    );
    const res = await resolve(svc.device(alice), [
      ref(SHARED, 'openai_key'),
      ref(SHARED, 'openai_key', 1),
    ]);
    expect(res.body.values).toEqual([
      { ref: ref(SHARED, 'openai_key'), version: 2, source: 'shared', value: 'sk-shared-2' },
      { ref: ref(SHARED, 'openai_key', 1), version: 1, source: 'shared', value: 'sk-shared-1' },
    ]);
    const audited = await reads();
    expect(audited).toHaveLength(4);
    for (const e of audited) {
      expect(e.actor).toMatchObject({ kind: 'device', agent_id: 'agent-a' });
      expect(e.target).toEqual({ secret: '_shared:openai_key', version: expect.any(Number) });
    }
    const grants = (await svc.store.auditEvents(1000)).filter((e) => e.action === 'secret.grant');
    expect(grants).toEqual([
      expect.objectContaining({
        actor: expect.objectContaining({ kind: 'bridge' }),
        target: { agent_id: 'agent-a', secret: '_shared:openai_key' },
      }),
    ]);
  });

  it('answers an agent not granted exactly as a shared secret that does not exist (404)', async () => {
    const missing = await getShared(svc.device(bob), 'later');
    const missingRef = await resolve(svc.device(bob), [ref(SHARED, 'later')]);
    // The secret comes to exist, even with a deleted current version, granted to someone else.
    await op('/secrets/put', { agent_id: SHARED, name: 'later', value: 'sk-later' });
    await op('/secrets/put', { agent_id: SHARED, name: 'later', value: 'sk-later-2' });
    await op('/secrets/delete', { agent_id: SHARED, name: 'later' });
    await grant('later', ['agent-a']);
    const notGranted = await getShared(svc.device(bob), 'later');
    const notGrantedRef = await resolve(svc.device(bob), [ref(SHARED, 'later')]);
    expect(missing.status).toBe(404);
    expect(notGranted.text).toBe(missing.text);
    expect(notGrantedRef.text).toBe(missingRef.text);
    expect(missingRef.body.error.details).toEqual({ index: 0, reason: 'not_found' });
    const pinned = [
      await getShared(svc.device(bob), 'later', { version: 1 }),
      await getShared(svc.device(bob), 'ghost', { version: 1 }),
    ];
    expect(pinned[0]!.body.error.details).toEqual({
      name: 'later',
      version: 1,
      reason: 'not_found',
    });
    expect(pinned[1]!.body.error.details).toEqual({
      name: 'ghost',
      version: 1,
      reason: 'not_found',
    });
    // The granted agent sees the real state.
    expect((await getShared(svc.device(alice), 'later')).body.error.details.reason).toBe('deleted');
    // Ungranted, the reader is back to not found; re-granting is idempotent.
    expect(
      (await op('/secrets/ungrant', { name: 'openai_key', agents: ['agent-a'] })).body,
    ).toEqual({ name: 'openai_key', readers: [] });
    expect((await getShared(svc.device(alice), 'openai_key')).status).toBe(404);
    expect((await grant('openai_key', ['agent-b', 'agent-a', 'agent-b'])).body.readers).toEqual([
      'agent-a',
      'agent-b',
    ]);
    expect((await grant('openai_key', ['agent-a'])).body.readers).toEqual(['agent-a', 'agent-b']);
    const grants = (await svc.store.auditEvents(1000)).filter((e) => e.action === 'secret.grant');
    expect(grants).toHaveLength(4); // a, later:a, then a and b again; the repeat changed nothing
    expect(
      (await reads()).filter((e) => e.actor.agent_id === 'agent-b'),
      'nothing read for bob',
    ).toEqual([]);
  });

  it('keeps grants across operator writes, and shows readers in the metadata', async () => {
    await op('/secrets/put', { agent_id: SHARED, name: 'openai_key', value: 'sk-shared-3' });
    expect((await getShared(svc.device(alice), 'openai_key')).body.value).toBe('sk-shared-3');
    const meta = await op('/secrets/metadata', { agent_id: SHARED, name: 'openai_key' });
    expect(meta.body).toMatchObject({
      name: 'openai_key',
      current_version: 3,
      readers: ['agent-a'],
    });
    const list = await op('/secrets/list', { agent_id: SHARED });
    expect(list.body.secrets.map((s: any) => s.name)).toEqual(['openai_key']);
    expect(list.text).not.toContain('sk-shared');
  });

  it('seals a shared read to the granted device like an own one', async () => {
    const keys = generateDeviceKeys();
    const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64url');
    const { code } = (await op('/device/enrollments/create', { agent_id: 'agent-a' })).body;
    const enrolled = await svc.post('/device/enroll', {
      code,
      sealing_public_key: b64(keys.sealing.publicKey),
      signing_public_key: b64(keys.signing.publicKey),
    });
    const device = svc.device(openEnrolledKey(enrolled.body, keys.sealing));
    const open = (sealed: string) =>
      Buffer.from(
        openSealed(
          Buffer.from(sealed, 'base64url'),
          keys.sealing.publicKey,
          keys.sealing.privateKey,
        )!,
      ).toString('utf8');
    const got = await getShared(device, 'openai_key', { seal: true });
    expect(got.body.value).toBeUndefined();
    expect(got.text).not.toContain('sk-shared');
    expect(open(got.body.sealed)).toBe('sk-shared-2');
    const res = await resolve(device, [ref(SHARED, 'openai_key')], { seal: true });
    expect(res.body.values[0]).toMatchObject({ source: 'shared', version: 2 });
    expect(open(res.body.values[0].sealed)).toBe('sk-shared-2');
  });
});

describe('shared secrets: scope', () => {
  it('is named by secrets/get:_shared/<name> (or un-narrowed), never by the own secrets/get:<name>', async () => {
    await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-own' }, svc.device(alice));
    const sharedOnly = token('agent-a', ['secrets/get:_shared/openai_key']);
    expect((await getShared(sharedOnly, 'openai_key')).body.value).toBe('sk-shared-2');
    expect((await resolve(sharedOnly, [ref(SHARED, 'openai_key')])).status).toBe(200);
    expect((await svc.post('/secrets/get', { name: 'openai_key' }, sharedOnly)).status).toBe(403);
    expect((await resolve(sharedOnly, [ref('agent-a', 'openai_key')])).status).toBe(403);

    const ownOnly = token('agent-a', ['secrets/get:openai_key']);
    expect((await svc.post('/secrets/get', { name: 'openai_key' }, ownOnly)).body.value).toBe(
      'sk-own',
    );
    const refused = await getShared(ownOnly, 'openai_key');
    expect(refused.status).toBe(403);
    expect(refused.text).not.toContain('sk-shared');
    const refusedRef = await resolve(ownOnly, [ref(SHARED, 'openai_key')]);
    expect(refusedRef.body.error.details).toEqual({ index: 0, reason: 'permission_denied' });

    const resolveOnly = token('agent-a', ['secrets/resolve:_shared/openai_key']);
    expect((await resolve(resolveOnly, [ref(SHARED, 'openai_key')])).status).toBe(200);
    for (const all of [token('agent-a', ['secrets/get']), token('agent-a', ['secrets/resolve'])]) {
      expect((await resolve(all, [ref(SHARED, 'openai_key')])).status).toBe(200);
    }
    expect((await getShared(token('agent-a', ['secrets/get']), 'openai_key')).status).toBe(200);
  });

  it('takes a _shared/<name> resource on the reads only', async () => {
    for (const scope of [
      ['secrets/put:_shared/x'],
      ['secrets/delete:_shared/x'],
      ['agents/get:_shared/x'],
    ]) {
      const res = await svc.post(
        '/delegate',
        { to_agent: 'agent-b', scope, ttl_seconds: 60 },
        svc.device(alice),
      );
      expect(res.status, scope[0]).toBe(400);
    }
    const ok = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get:_shared/openai_key'], ttl_seconds: 60 },
      svc.device(alice),
    );
    expect(ok.status).toBe(201);
  });
});

describe('shared secrets: fallback "shared"', () => {
  beforeEach(async () => {
    await op('/secrets/put', { agent_id: SHARED, name: 'db_password', value: 'pw-shared' });
    await grant('db_password', ['agent-a', 'agent-b']);
    await svc.post('/secrets/put', { name: 'db_password', value: 'pw-own' }, svc.device(alice));
  });

  it("resolves the agent's own secret first, and fills in from the granted shared one", async () => {
    const refs = [ref('agent-a', 'db_password'), ref('agent-a', 'openai_key')];
    const res = await resolve(svc.device(alice), refs, { fallback: 'shared' });
    expect(res.status).toBe(200);
    expect(res.body.values).toEqual([
      { ref: refs[0], version: 1, source: 'agent', value: 'pw-own' },
      { ref: refs[1], version: 2, source: 'shared', value: 'sk-shared-2' },
    ]);
    const audited = (await reads()).map((e) => e.target.secret).sort();
    expect(audited).toEqual(['_shared:openai_key', 'db_password']);
    // Without the fallback, the missing own secret fails the call.
    const strict = await resolve(svc.device(alice), refs);
    expect(strict.body.error.details).toEqual({ index: 1, reason: 'not_found' });
    // An own secret whose current version is deleted has no readable version: shared fills in.
    await svc.post('/secrets/delete', { name: 'db_password' }, svc.device(alice));
    const deleted = await resolve(svc.device(alice), [refs[0]!], { fallback: 'shared' });
    expect(deleted.body.values[0]).toMatchObject({ source: 'shared', value: 'pw-shared' });
    // A pinned version names one exact version: no fallback.
    const pinned = await resolve(svc.device(alice), [ref('agent-a', 'openai_key', 1)], {
      fallback: 'shared',
    });
    expect(pinned.body.error.details).toEqual({ index: 0, reason: 'not_found' });
  });

  it('falls back only to what the agent may read: granted and in scope, else the own 404', async () => {
    // bob is not granted openai_key: its own 404, as if no shared secret existed.
    const notGranted = await resolve(svc.device(bob), [ref('agent-b', 'openai_key')], {
      fallback: 'shared',
    });
    const none = await resolve(svc.device(bob), [ref('agent-b', 'nothing_at_all')], {
      fallback: 'shared',
    });
    expect(notGranted.status).toBe(404);
    expect(notGranted.body.error.details).toEqual(none.body.error.details);
    // A token scoped to the own secret only does not reach the shared one.
    const ownOnly = token('agent-a', ['secrets/get:openai_key']);
    const res = await resolve(ownOnly, [ref('agent-a', 'openai_key')], { fallback: 'shared' });
    expect(res.body.error.details).toEqual({ index: 0, reason: 'not_found' });
    const both = token('agent-a', ['secrets/get:openai_key', 'secrets/get:_shared/openai_key']);
    const ok = await resolve(both, [ref('agent-a', 'openai_key')], { fallback: 'shared' });
    expect(ok.body.values[0]).toMatchObject({ source: 'shared', value: 'sk-shared-2' });
    expect(JSON.stringify(notGranted.body) + JSON.stringify(res.body)).not.toContain('sk-shared');
  });
});

describe('shared secrets: delegated reads act for the delegator', () => {
  async function delegation(scope: string[]) {
    const res = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope, ttl_seconds: 600 },
      svc.device(alice),
    );
    expect(res.status).toBe(201);
    return { ...svc.device(bob), 'x-agentpack-delegation': res.body.delegation_id as string };
  }

  it("reads a shared secret granted to the delegator within the delegation's scope", async () => {
    const headers = await delegation(['secrets/get:_shared/openai_key']);
    expect((await getShared(headers, 'openai_key')).body.value).toBe('sk-shared-2');
    expect((await resolve(headers, [ref(SHARED, 'openai_key')])).body.values[0].source).toBe(
      'shared',
    );
    for (const e of await reads()) {
      expect(e.actor).toMatchObject({ agent_id: 'agent-b', for_agent: 'agent-a' });
      expect(e.target).toMatchObject({ secret: '_shared:openai_key' });
    }
    // Out of the delegation's scope: its own-secret entry does not name the shared one.
    const narrow = await delegation(['secrets/get:openai_key']);
    expect((await getShared(narrow, 'openai_key')).status).toBe(403);
    expect((await resolve(narrow, [ref(SHARED, 'openai_key')])).status).toBe(403);
  });

  it('never reads through a delegation what is granted to the delegate only', async () => {
    await op('/secrets/put', { agent_id: SHARED, name: 'bob_only', value: 'sk-bob-only' });
    await grant('bob_only', ['agent-b']);
    expect((await getShared(svc.device(bob), 'bob_only')).status).toBe(200);
    // Named explicitly: still the delegator's view, where it is not granted (404).
    const headers = await delegation(['secrets/get:_shared/bob_only']);
    const res = await getShared(headers, 'bob_only');
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('sk-bob-only');
    expect((await resolve(headers, [ref(SHARED, 'bob_only')])).status).toBe(404);
  });

  it("an un-narrowed delegation does not reach the shared secrets (they are not the delegator's)", async () => {
    const headers = await delegation(['secrets/get']);
    const res = await getShared(headers, 'openai_key');
    expect(res.status).toBe(403);
    expect(res.text).not.toContain('sk-shared');
    expect((await resolve(headers, [ref(SHARED, 'openai_key')])).status).toBe(403);
  });
});

describe('shared secrets: retired agents', () => {
  it('grants nothing to a retired agent (409), all or nothing', async () => {
    expect((await op('/agents/retire', { agent_id: 'agent-b', confirm: 'agent-b' })).status).toBe(
      200,
    );
    const res = await op('/secrets/grant', { name: 'openai_key', agents: ['agent-a', 'agent-b'] });
    expect(res.status).toBe(409);
    expect(res.body.error.details).toMatchObject({ agent_id: 'agent-b', reason: 'retired' });
    const meta = await op('/secrets/metadata', { agent_id: SHARED, name: 'openai_key' });
    expect(meta.body.readers ?? []).not.toContain('agent-b');
  });
});

describe('shared secrets: bad input', () => {
  it('never makes _shared an agent', async () => {
    const create = await op('/agents/create', { display_name: 'x', agent_id: SHARED });
    expect(create.status).toBe(400);
    expect(await svc.store.get('agents', SHARED)).toBeNull();
    for (const [path, body] of [
      ['/device/issue', { agent_id: SHARED }],
      ['/agents/get', { agent_id: SHARED }],
      ['/secrets/grant', { name: 'openai_key', agents: [SHARED] }],
    ] as const) {
      expect((await op(path, body)).status, path).toBe(400);
    }
  });

  it('refuses bad grant requests (400), unknown secrets and agents (404), agents (403)', async () => {
    for (const body of [
      { name: 'openai_key' },
      { name: 'openai_key', agents: [] },
      { name: 'openai_key', agents: 'agent-a' },
      { name: 'openai_key', agents: ['Agent-A'] },
      { name: 'openai_key', agents: ['ab'] },
      { name: 'openai_key', agents: Array.from({ length: 101 }, (_, i) => `agent-${i}`) },
      { name: 'openai_key', agents: ['agent-a'], agent_id: SHARED },
      { name: 'openai_key', agents: ['agent-a'], extra: true },
      { name: '.bad', agents: ['agent-a'] },
      { agents: ['agent-a'] },
    ]) {
      for (const path of ['/secrets/grant', '/secrets/ungrant']) {
        expect((await op(path, body)).status, `${path} ${JSON.stringify(body).slice(0, 60)}`).toBe(
          400,
        );
      }
    }
    const noSecret = await grant('ghost', ['agent-a']);
    expect(noSecret.status).toBe(404);
    expect(noSecret.body.error).toMatchObject({ details: { name: 'ghost' } });
    // One unknown agent fails the whole grant: nobody is granted.
    const noAgent = await grant('openai_key', ['agent-b', 'agent-z']);
    expect(noAgent.status).toBe(404);
    expect(noAgent.body.error.details).toEqual({ agent_id: 'agent-z' });
    expect((await svc.store.get('secrets', '_shared:openai_key'))!.readers).toEqual(['agent-a']);
    for (const path of ['/secrets/grant', '/secrets/ungrant']) {
      const res = await svc.post(
        path,
        { name: 'openai_key', agents: ['agent-b'] },
        svc.device(alice),
      );
      expect(res.status).toBe(403);
    }
    for (const body of [
      { name: 'openai_key', owner: 'agent-a' },
      { name: 'openai_key', owner: '_SHARED' },
    ]) {
      expect((await svc.post('/secrets/get', body, svc.device(alice))).status).toBe(400);
    }
    for (const fallback of ['agent', 'none', true, null]) {
      const res = await resolve(svc.device(alice), [ref(SHARED, 'openai_key')], { fallback });
      expect(res.status).toBe(400);
    }
    for (const bad of ['agentpack.secret://_Shared/x', 'agentpack.secret://_other/x']) {
      const res = await resolve(svc.device(alice), [bad]);
      expect(res.body.error.details).toEqual({ index: 0, reason: 'malformed' });
    }
  });
});
