/**
 * `/agents/retire` over real HTTP, on SQLite and on Firestore (the in-process emulator always;
 * the official one when FIRESTORE_EMULATOR_HOST is set): an agent holding more than one batch
 * of everything retires whole (keys, enrollment, delegations both ways, runs, every secret
 * version shredded), idempotently, and resumes after an interruption during which it is already
 * refused everywhere; its id never comes back, its audit stays and holds no key, code or value.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { generateDeviceKey, generateDeviceKeys } from '@agentpack-identity/protocol';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { generateKeyId, listKey } from '../functions/src/core/ids.js';
import { RETIRE_BATCH_WRITES } from '../functions/src/core/retire-walks.js';
import { rfc3339 } from '../functions/src/ports/clock.js';
import type { AuditEvent } from '../functions/src/ports/audit-event.js';
import type { Store, Tx } from '../functions/src/ports/store.js';
import { manualClock } from './helpers/clock.js';
import { storeBackends } from './helpers/store-backends.js';
import { runClient, type Run, type RunClient } from './helpers/runs.js';
import { startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';
import { interruptible } from './helpers/interruptible-store.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const backends = storeBackends('retire').map((b) => ({
  name: b.name,
  store: (): Store => b.store() ?? openSqliteStore({ file: `${tmp.dir}/${Math.random()}.sqlite` }),
}));

const RETIREE = 'retiree';
const PEER = 'peer';
/** Keys written straight to the store, so that the agent holds more than one batch of keys. */
const BULK_KEYS = RETIRE_BATCH_WRITES + 3;
/** Versions of one secret written straight to the store: more than one batch by itself. */
const BULK_VERSIONS = 250;
const VALUES = ['sk-alpha-1', 'sk-alpha-2', 'sk-alpha-3', 'sk-beta-1', 'sk-beta-2', 'sk-gamma-1'];

interface Seeded {
  key: string;
  keys: string[];
  peerKey: string;
  code: string;
  fromRetiree: string;
  toRetiree: string;
  runs: Run[];
}

/** What a full retire of the seeded agent answers, however many calls it took. */
const EXPECTED = {
  agent_id: RETIREE,
  revoked: { device_keys: BULK_KEYS + 1, delegations: 2, runs: 2 },
  destroyed_versions: 3 + 1 + 1 + BULK_VERSIONS,
};

describe.each(backends)('/agents/retire: $name', { timeout: 240_000 }, (backend) => {
  let svc: TestService;
  let store: ReturnType<typeof interruptible>;
  let runs: RunClient;
  const clock = manualClock(Date.now());

  afterEach(async () => {
    await svc?.close();
  });

  const post = (path: string, body: object, headers = svc.bridge) => svc.post(path, body, headers);
  const retire = (id = RETIREE) => post('/agents/retire', { agent_id: id, confirm: id });
  const events = async (): Promise<AuditEvent[]> => svc.store.auditEvents(100_000);
  const byCause = (all: AuditEvent[], action: string) =>
    all.filter((e) => e.action === action && e.details?.['cause'] === 'agent.retire');
  const sum = (all: AuditEvent[], field: string) =>
    all.reduce((n, e) => n + Number(e.details?.[field]), 0);

  const delegated = (key: string, id: string) => ({
    ...svc.device(key),
    'x-agentpack-delegation': id,
  });

  async function ok(path: string, body: object, headers = svc.bridge, status = 200) {
    const res = await post(path, body, headers);
    expect(res.status, `${path}: ${res.text}`).toBe(status);
    return res.body;
  }

  /** Starts the service and gives the retiree more than one batch of items of every kind. */
  async function seed(): Promise<Seeded> {
    store = interruptible(backend.store());
    svc = await startTestService({ clock, store });
    runs = runClient(svc, clock);
    for (const id of [RETIREE, PEER])
      await ok('/agents/create', { display_name: id, agent_id: id }, svc.bridge, 201);
    const issue = async (agent: string) =>
      (await ok('/device/issue', { agent_id: agent }, svc.bridge, 201)).device_key as string;
    const key = await issue(RETIREE);
    const peerKey = await issue(PEER);
    // Already revoked before the retire: not counted by it.
    const old = await ok('/device/issue', { agent_id: RETIREE }, svc.bridge, 201);
    await ok('/device/revoke', { key_id: old.key_id });

    const bulk = Array.from({ length: BULK_KEYS }, () => generateDeviceKey());
    const at = rfc3339(clock.now());
    const writes: Array<(tx: Tx) => void> = bulk.map((k) => (tx) => {
      const keyId = generateKeyId();
      tx.set('device_keys', svc.digest('device_key', k), {
        ...{ key_id: keyId, agent_id: RETIREE, label: null, created_at: at, expires_at: null },
        ...{ revoked_at: null, list_key: listKey(at, keyId), digest: 'keyed' },
      });
    });
    const versions = Array.from({ length: BULK_VERSIONS }, (_, i) => i + 1);
    for (const version of versions) {
      writes.push((tx) =>
        tx.set('secret_versions', `${RETIREE}:bulk:${version}`, {
          ...{ agent_id: RETIREE, name: 'bulk', version, created_at: at, kek_ref: 'test' },
          ...{ ciphertext: 'AA', iv: 'AA', tag: 'AA', wrapped_key: 'AA' },
        }),
      );
    }
    writes.push((tx) =>
      tx.set('secrets', `${RETIREE}:bulk`, {
        ...{ agent_id: RETIREE, name: 'bulk', current_version: BULK_VERSIONS },
        ...{ created_at: at, updated_at: at },
        versions: versions.map((version) => ({
          ...{ version, created_at: at, deleted_at: null, destroyed: false },
        })),
      }),
    );
    for (let i = 0; i < writes.length; i += 100) {
      await svc.store.transact(async (tx) => writes.slice(i, i + 100).forEach((w) => w(tx)));
    }
    expect((await post('/agents/get', {}, svc.device(bulk.at(-1)!))).status).toBe(200);

    const dev = svc.device(key);
    for (const value of VALUES)
      await ok('/secrets/put', { name: value.split('-')[1]!, value }, dev);
    await ok('/secrets/destroy', { name: 'beta', versions: [1] }, dev);
    await ok('/secrets/delete', { name: 'gamma', versions: [1] }, dev);
    await ok('/secrets/put', { name: 'peer_secret', value: 'sk-peer' }, svc.device(peerKey));

    const delegation = { to_agent: PEER, scope: ['agents/get'], ttl_seconds: 3600 };
    const fromRetiree = (await ok('/delegate', delegation, dev, 201)).delegation_id;
    const toRetiree = (
      await ok('/delegate', { ...delegation, to_agent: RETIREE }, svc.device(peerKey), 201)
    ).delegation_id;
    expect((await post('/agents/get', {}, delegated(peerKey, fromRetiree))).status).toBe(200);

    const root = await runs.spawn(dev, { scope: ['agents/get', 'runs/spawn'] });
    const child = await runs.spawn(root, { scope: ['agents/get'] });
    const revokedBefore = await runs.spawn(dev);
    await ok('/runs/revoke', { run_id: revokedBefore.run_id });
    const enrollment = { agent_id: RETIREE, ttl_seconds: 3600 };
    const code = (await ok('/device/enrollments/create', enrollment, svc.bridge, 201)).code;
    clock.advance(1000);
    return {
      key,
      keys: [key, ...bulk],
      peerKey,
      code,
      fromRetiree,
      toRetiree,
      runs: [root, child],
    };
  }

  const enroll = (code: string) => {
    const d = generateDeviceKeys();
    const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64url');
    return post(
      '/device/enroll',
      {
        code,
        sealing_public_key: b64(d.sealing.publicKey),
        signing_public_key: b64(d.signing.publicKey),
      },
      {},
    );
  };

  /** Everything of the retiree is refused, revoked or gone; the peer's own things are not. */
  async function expectRetired(s: Seeded, retiredAt: string): Promise<void> {
    expect(await ok('/agents/get', { agent_id: RETIREE })).toEqual({
      agent_id: RETIREE,
      display_name: RETIREE,
      disabled: true,
      created_at: expect.any(String),
      retired_at: retiredAt,
    });
    for (const k of s.keys) expect((await post('/agents/get', {}, svc.device(k))).status).toBe(401);
    const stored = await svc.store.find('device_keys', 'agent_id', RETIREE, 1000);
    expect(stored).toHaveLength(BULK_KEYS + 2);
    expect(stored.filter((f) => f.doc.revoked_at === null)).toEqual([]);

    expect((await enroll(s.code)).status).toBe(401);
    const [enrollment] = await svc.store.find('device_enrollments', 'agent_id', RETIREE, 10);
    expect(enrollment!.doc).toMatchObject({ used_at: null, expires_at: expect.any(String) });
    expect(Date.parse(enrollment!.doc.expires_at)).toBeLessThanOrEqual(clock.now());

    for (const id of [s.fromRetiree, s.toRetiree]) {
      expect(await svc.store.get('delegations', id)).toMatchObject({
        revoked_at: expect.any(String),
        live_from_agent: null,
      });
    }
    expect((await post('/agents/get', {}, delegated(s.peerKey, s.fromRetiree))).status).toBe(403);

    for (const run of s.runs) {
      expect((await runs.identity(run.run_id)).body.status).toBe('revoked');
      expect((await runs.asRun(run, '/agents/get', {})).status).toBe(401);
    }

    const versions = await svc.store.scan('secret_versions', null, 10_000);
    expect(versions.filter((f) => f.doc.agent_id === RETIREE)).toEqual([]);
    expect(versions.filter((f) => f.doc.agent_id === PEER)).toHaveLength(1);
    const metas = await svc.store.find('secrets', 'agent_id', RETIREE, 100);
    expect(metas.map((m) => m.doc.name).sort()).toEqual(['alpha', 'beta', 'bulk', 'gamma']);
    for (const m of metas) expect(m.doc.versions.every((v) => v.destroyed)).toBe(true);

    expect(await ok('/secrets/get', { name: 'peer_secret' }, svc.device(s.peerKey))).toMatchObject({
      value: 'sk-peer',
    });
  }

  /** The audit of a retire: started and completed once, every batch counted once, no secret. */
  async function expectAudit(s: Seeded): Promise<void> {
    const all = await events();
    expect(all.filter((e) => e.action === 'agent.retire')).toHaveLength(1);
    const [done, ...more] = all.filter((e) => e.action === 'agent.retire_complete');
    expect(more).toEqual([]);
    expect(done!.details).toEqual({
      device_keys: BULK_KEYS + 1,
      enrollments: 1,
      delegations: 2,
      runs: 2,
      destroyed_versions: EXPECTED.destroyed_versions,
    });
    const keyBatches = byCause(all, 'device_key.revoke');
    expect(keyBatches.length).toBeGreaterThan(1);
    expect(sum(keyBatches, 'revoked')).toBe(BULK_KEYS + 1);
    expect(sum(byCause(all, 'delegation.revoke'), 'revoked')).toBe(2);
    expect(sum(byCause(all, 'device.enrollment_expire'), 'expired')).toBe(1);
    expect(sum(byCause(all, 'run.revoke'), 'ended')).toBe(2);
    const shredded = byCause(all, 'secret.destroy');
    expect(sum(shredded, 'destroyed')).toBe(EXPECTED.destroyed_versions);
    expect(shredded.filter((e) => e.target.secret === 'bulk').length).toBeGreaterThan(1);
    for (const e of [done!, ...keyBatches, ...shredded]) {
      expect(e.actor).toMatchObject({ kind: 'bridge' });
      expect(e.target.agent_id).toBe(RETIREE);
    }
    const text = JSON.stringify(all);
    for (const secret of [...s.keys, s.peerKey, s.code, ...VALUES]) {
      expect(text.includes(secret)).toBe(false);
    }
  }

  it('retires an agent holding more than a batch of everything, whole, and idempotently', async () => {
    const s = await seed();
    const res = await retire();
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ ...EXPECTED, retired_at: expect.any(String) });
    await expectRetired(s, res.body.retired_at);
    await expectAudit(s);

    // Again: nothing left to do, the same answer, no new event.
    const before = (await events()).length;
    clock.advance(5000);
    expect((await retire()).body).toEqual(res.body);
    expect(await events()).toHaveLength(before);

    // The end: never enabled, never created again, nothing new minted for it.
    const enable = await post('/agents/enable', { agent_id: RETIREE });
    expect(enable.status).toBe(409);
    expect(enable.body.error.code).toBe('failed_precondition');
    const again = await post('/agents/create', { display_name: 'x', agent_id: RETIREE });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_exists');
    expect((await post('/device/issue', { agent_id: RETIREE })).status).toBe(403);
    expect((await post('/device/enrollments/create', { agent_id: RETIREE })).status).toBe(403);
    expect((await ok('/agents/disable', { agent_id: RETIREE })).retired_at).toBe(
      res.body.retired_at,
    );
    expect(await events()).toHaveLength(before);
    await expectRetired(s, res.body.retired_at);
  });

  it('fails closed at the first commit and resumes after an interruption', async () => {
    const s = await seed();
    // The mark and one batch of keys commit, then the store fails.
    store.arm(2);
    const cut = await retire();
    expect(cut.status).toBe(500);
    store.disarm();

    const agent = await ok('/agents/get', { agent_id: RETIREE });
    expect(agent).toMatchObject({ disabled: true, retired_at: expect.any(String) });
    const keys = await svc.store.find('device_keys', 'agent_id', RETIREE, 1000);
    const unrevoked = keys.filter((f) => f.doc.revoked_at === null);
    expect(unrevoked.length).toBeGreaterThan(0);
    expect(unrevoked.length).toBeLessThan(keys.length - 1);
    // Every key is refused: 401 once the walk revoked it, 403 (its agent is disabled) before.
    const pending = new Set(unrevoked.map((f) => f.id));
    for (const k of s.keys) {
      const status = (await post('/agents/get', {}, svc.device(k))).status;
      expect(status).toBe(pending.has(svc.digest('device_key', k)) ? 403 : 401);
    }
    expect((await enroll(s.code)).status).toBe(403);
    expect((await post('/agents/get', {}, delegated(s.peerKey, s.fromRetiree))).status).toBe(403);
    // A run's status counts its agent: every run of a retired agent reads revoked (401), walked
    // or not, whatever the state of the key that spawned it.
    for (const run of s.runs) expect((await runs.asRun(run, '/agents/get', {})).status).toBe(401);
    expect((await post('/agents/enable', { agent_id: RETIREE })).status).toBe(409);

    // Interrupted again, further on (in the shredding), then finished.
    store.arm(8);
    expect((await retire()).status).toBe(500);
    store.disarm();
    const versions = await svc.store.scan('secret_versions', null, 10_000);
    const left = versions.filter((f) => f.doc.agent_id === RETIREE).length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(EXPECTED.destroyed_versions);
    clock.advance(1000);
    const res = await retire();
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ ...EXPECTED, retired_at: agent.retired_at });
    await expectRetired(s, agent.retired_at);
    await expectAudit(s);
  });

  it('refuses a mismatched confirm, a non-agent owner, an unknown agent and any other caller', async () => {
    store = interruptible(backend.store());
    svc = await startTestService({ clock, store });
    await ok('/agents/create', { display_name: 'x', agent_id: RETIREE }, svc.bridge, 201);
    const key = (await ok('/device/issue', { agent_id: RETIREE }, svc.bridge, 201)).device_key;
    const before = (await events()).length;

    const mismatch = await post('/agents/retire', { agent_id: RETIREE, confirm: 'retire' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.code).toBe('invalid_argument');
    expect((await post('/agents/retire', { agent_id: RETIREE })).status).toBe(400);
    expect(
      (await post('/agents/retire', { agent_id: RETIREE, confirm: RETIREE, x: 1 })).status,
    ).toBe(400);
    expect((await retire('_shared')).status).toBe(400);
    const unknown = await retire('nobody-here');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    const asAgent = await post(
      '/agents/retire',
      { agent_id: RETIREE, confirm: RETIREE },
      svc.device(key),
    );
    expect(asAgent.status).toBe(403);

    // Nothing changed.
    expect(await ok('/agents/get', { agent_id: RETIREE })).not.toHaveProperty('retired_at');
    expect((await post('/agents/get', {}, svc.device(key))).status).toBe(200);
    expect(await events()).toHaveLength(before);
  });
});
