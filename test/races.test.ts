/**
 * Races, settled by transactions, over real HTTP with many requests in flight at once
 * (Promise.all), each case repeated for several rounds:
 *
 * - concurrent writers with one `cas`: exactly one wins, the rest get 409;
 * - concurrent writers without `cas`: distinct versions, each readable with its own value;
 * - revoke against use, disable against use, delegation revoke against delegated reads, run
 *   revoke against the run's (and its child's) signed requests: once the revoking call has
 *   returned, no request that starts afterwards succeeds;
 * - issue against disable: no key is issued to a disabled agent (no key commits after the
 *   disable, none is written for a refused issue);
 * - rotate against rotate on one key: one 201, the others 401, one active key remains.
 *
 * On SQLite always (as is, and with the event loop yielded to before every store read so that
 * requests really interleave between their checks and their commits); on the official Firestore
 * emulator too when FIRESTORE_EMULATOR_HOST names one (those cases are registered only then).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { generateDeviceKeys, signRequest } from '@agentpack-identity/protocol';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import type { AuditEvent } from '../functions/src/core/audit.js';
import { burst } from './helpers/burst.js';
import { officialEmulatorStore } from './helpers/firestore-emulator.js';
import { jitteryStore } from './helpers/jittery-store.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { startTestService, type ApiResult, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

interface Backend {
  name: string;
  open(): Promise<TestService>;
  /** True when `auditEvents` lists events in commit order (SQLite). */
  auditInCommitOrder: boolean;
  /** Requests in flight at once. */
  width: number;
  rounds: number;
}

const officialStore = () => officialEmulatorStore('races');

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    open: () => startTestService(),
    auditInCommitOrder: true,
    width: 16,
    rounds: 5,
  },
  {
    // The same store with the event loop yielded to before every read, so that requests
    // interleave between their checks and their commits (see helpers/jittery-store.ts).
    name: 'sqlite with interleaving',
    async open() {
      const tmp = tempDir();
      const store = jitteryStore(openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') }));
      const svc = await startTestService({ store });
      return {
        ...svc,
        async close() {
          await svc.close();
          tmp.remove();
        },
      };
    },
    auditInCommitOrder: true,
    width: 16,
    rounds: 5,
  },
];
const emulatorHost = process.env['FIRESTORE_EMULATOR_HOST'];
if (emulatorHost !== undefined && emulatorHost !== '') {
  BACKENDS.push({
    name: `firestore (official emulator at ${emulatorHost})`,
    open: () => startTestService({ store: officialStore() }),
    auditInCommitOrder: false,
    width: 6,
    rounds: 2,
  });
}

interface Use {
  start: number;
  end: number;
  status: number;
  text: string;
}

/** What the cutting call (revoke, disable) did, on the same clock as the uses. */
interface Cut {
  start: number;
  /** When its response had been read in full: every use that starts later must be refused. */
  done: number;
  result: ApiResult;
}

/**
 * Runs `workers` loops of `use` against one `cut`: the cut starts once `okBefore` uses have
 * succeeded, and the loops go on until each has made `after` uses that started after the cut
 * returned. Synchronisation is by conditions (counts), never by sleeping.
 */
async function raceUsesAgainstCut(options: {
  workers: number;
  use: (worker: number, i: number) => Promise<ApiResult>;
  cut: () => Promise<ApiResult>;
  okBefore?: number;
  after?: number;
}): Promise<{ uses: Use[]; cut: Cut }> {
  const okBefore = options.okBefore ?? 2 * options.workers;
  const after = options.after ?? 3;
  const uses: Use[] = [];
  let ok = 0;
  let cutPromise: Promise<Cut> | null = null;
  let cutDone: number | null = null;
  const startCut = () => {
    cutPromise ??= (async () => {
      const start = performance.now();
      const result = await options.cut();
      const done = performance.now();
      cutDone = done;
      return { start, done, result };
    })();
  };
  const worker = async (w: number) => {
    let afterCut = 0;
    for (let i = 0; afterCut < after; i++) {
      if (i > 5_000) throw new Error(`worker ${w} never saw the cut (ok so far: ${ok})`);
      const start = performance.now();
      const res = await options.use(w, i);
      const end = performance.now();
      uses.push({ start, end, status: res.status, text: res.text });
      if (res.status === 200) ok++;
      if (ok >= okBefore) startCut();
      if (cutDone !== null && start > cutDone) afterCut++;
    }
  };
  await Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w)));
  if (cutPromise === null) throw new Error('the cut never started');
  return { uses, cut: await cutPromise };
}

/** The checks shared by every "use against cut" race. */
function expectCutHolds(
  { uses, cut }: { uses: Use[]; cut: Cut },
  refused: { status: number; code: string },
): void {
  expect(cut.result.status, cut.result.text).toBe(200);
  for (const u of uses) {
    // Before, during and after: only a success or the refusal, never a 5xx or anything else.
    expect([200, refused.status], u.text).toContain(u.status);
  }
  const before = uses.filter((u) => u.end < cut.start);
  const after = uses.filter((u) => u.start > cut.done);
  expect(before.length).toBeGreaterThan(0);
  expect(before.every((u) => u.status === 200)).toBe(true);
  expect(after.length).toBeGreaterThan(0);
  const succeededAfter = after.filter((u) => u.status !== refused.status);
  expect(
    succeededAfter.map((u) => `${u.status} at +${(u.start - cut.done).toFixed(2)} ms`),
    'requests that started after the cut returned',
  ).toEqual([]);
  for (const u of after) expect(JSON.parse(u.text).error.code).toBe(refused.code);
}

function auditFor(events: AuditEvent[], action: string, agentId: string): AuditEvent[] {
  return events.filter((e) => e.action === action && e.target.agent_id === agentId);
}

describe.each(BACKENDS)('races on $name', (backend) => {
  let svc: TestService;
  beforeEach(async () => {
    svc = await backend.open();
  });
  afterEach(async () => {
    await svc.close();
  });

  const N = backend.width;

  /** POSTs JSON bodies that all reach the server at the same moment (see helpers/burst.ts). */
  const together = (
    requests: Array<{ path: string; body: unknown; headers: Record<string, string> }>,
  ) =>
    burst(
      svc.url,
      requests.map((r) => ({
        path: r.path,
        headers: { 'content-type': 'application/json', ...r.headers },
        body: typeof r.body === 'string' ? r.body : JSON.stringify(r.body),
      })),
    );

  async function agentWithKey(agentId: string): Promise<{ key: string; keyId: string }> {
    const created = await svc.post(
      '/agents/create',
      { display_name: agentId, agent_id: agentId },
      svc.bridge,
    );
    expect(created.status, created.text).toBe(201);
    return issue(agentId);
  }

  async function issue(agentId: string): Promise<{ key: string; keyId: string }> {
    const res = await svc.post('/device/issue', { agent_id: agentId }, svc.bridge);
    expect(res.status, res.text).toBe(201);
    return { key: res.body.device_key, keyId: res.body.key_id };
  }

  it('of concurrent writers with one cas, exactly one wins and every other gets 409', async () => {
    const { key } = await agentWithKey('cas-agent');
    for (let round = 0; round < backend.rounds; round++) {
      const name = `cas_${round}`;
      // Even rounds race to create (cas 0); odd rounds race on an existing version.
      const cas = round % 2 === 0 ? 0 : round;
      for (let v = 1; v <= cas; v++) {
        const pre = await svc.post('/secrets/put', { name, value: `pre-${v}` }, svc.device(key));
        expect(pre.status).toBe(200);
      }
      const values = Array.from(
        { length: N },
        (_, i) => `r${round}-w${i}-${randomBytes(6).toString('hex')}`,
      );
      const results = await together(
        values.map((value) => ({
          path: '/secrets/put',
          body: { name, value, cas },
          headers: svc.device(key),
        })),
      );
      const winners = results.filter((r) => r.status === 200);
      expect(
        results.map((r) => r.status),
        `round ${round}`,
      ).toEqual(expect.arrayContaining([200]));
      expect(winners, `round ${round}`).toHaveLength(1);
      expect(winners[0]!.body.version).toBe(cas + 1);
      for (const loser of results.filter((r) => r.status !== 200)) {
        expect(loser.status, loser.text).toBe(409);
        expect(loser.body.error.code).toBe('failed_precondition');
        expect(loser.body.error.details.current_version).toBe(cas + 1);
      }
      const winnerValue = values[results.indexOf(winners[0]!)];
      const got = await svc.post('/secrets/get', { name }, svc.device(key));
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ version: cas + 1, value: winnerValue });
      const meta = await svc.post('/secrets/metadata', { name }, svc.device(key));
      expect(meta.body.current_version).toBe(cas + 1);
      expect(meta.body.versions.map((v: { version: number }) => v.version)).toEqual(
        Array.from({ length: cas + 1 }, (_, i) => i + 1),
      );
      // The store agrees: one version document per kept version, and one audited put each.
      const doc = await svc.store.get('secrets', `cas-agent:${name}`);
      expect(doc?.current_version).toBe(cas + 1);
      expect(await svc.store.get('secret_versions', `cas-agent:${name}:${cas + 2}`)).toBeNull();
      const puts = (await svc.store.auditEvents(100_000)).filter(
        (e) => e.action === 'secret.put' && e.target.secret === name,
      );
      expect(puts).toHaveLength(cas + 1);
    }
  });

  it('of concurrent writers without cas, each gets its own version, readable with its own value', async () => {
    const { key } = await agentWithKey('free-agent');
    const setting = await svc.post(
      '/settings/set',
      { key: 'secrets.max_versions', value: 100 },
      svc.bridge,
    );
    expect(setting.status).toBe(200);
    for (let round = 0; round < backend.rounds; round++) {
      const name = `free_${round}`;
      const values = Array.from({ length: N }, (_, i) => `free-r${round}-w${i}`);
      const results = await together(
        values.map((value) => ({
          path: '/secrets/put',
          body: { name, value },
          headers: svc.device(key),
        })),
      );
      for (const r of results) expect(r.status, r.text).toBe(200);
      const versions = results.map((r) => r.body.version as number);
      expect([...versions].sort((a, b) => a - b)).toEqual(
        Array.from({ length: N }, (_, i) => i + 1),
      );
      // Each value was sealed under the version it landed on: every one reads back.
      for (const [i, version] of versions.entries()) {
        const got = await svc.post('/secrets/get', { name, version }, svc.device(key));
        expect(got.status, got.text).toBe(200);
        expect(got.body.value).toBe(values[i]);
      }
    }
  });

  it('of revoke against use, no request that starts after /device/revoke returned succeeds', async () => {
    await agentWithKey('use-agent');
    for (let round = 0; round < backend.rounds; round++) {
      const target = await issue('use-agent');
      const other = await issue('use-agent');
      const put = await svc.post(
        '/secrets/put',
        { name: 'used', value: `v${round}` },
        svc.device(target.key),
      );
      expect(put.status).toBe(200);
      // Revoked by the bridge, by the key itself, or by another key of the same agent.
      const revokers = [
        () => svc.post('/device/revoke', { key_id: target.keyId }, svc.bridge),
        () => svc.post('/device/revoke', {}, svc.device(target.key)),
        () => svc.post('/device/revoke', { key_id: target.keyId }, svc.device(other.key)),
      ];
      const race = await raceUsesAgainstCut({
        workers: Math.max(4, N / 2),
        use: (w, i) =>
          (w + i) % 2 === 0
            ? svc.post('/agents/get', {}, svc.device(target.key))
            : svc.post('/secrets/get', { name: 'used' }, svc.device(target.key)),
        cut: revokers[round % revokers.length]!,
      });
      expectCutHolds(race, { status: 401, code: 'unauthenticated' });
      expect(race.cut.result.body.key_id).toBe(target.keyId);
      // The other key of the agent is untouched.
      expect((await svc.post('/agents/get', {}, svc.device(other.key))).status).toBe(200);
    }
  });

  it('of disable against use, no device-key or token request that starts after /agents/disable returned succeeds', async () => {
    for (let round = 0; round < backend.rounds; round++) {
      const agentId = `dis-agent-${round}`;
      const { key } = await agentWithKey(agentId);
      const token = mintTestToken({ sub: agentId, scope: ['agents/get'], nowMs: Date.now() });
      const race = await raceUsesAgainstCut({
        workers: Math.max(4, N / 2),
        use: (w) =>
          w % 2 === 0
            ? svc.post('/agents/get', {}, svc.device(key))
            : svc.post('/agents/get', {}, bearer(token)),
        cut: () => svc.post('/agents/disable', { agent_id: agentId }, svc.bridge),
      });
      expectCutHolds(race, { status: 403, code: 'permission_denied' });
    }
  });

  it('of delegation revoke against delegated reads, no read that starts after /delegate/revoke returned succeeds', async () => {
    const a = await agentWithKey('dg-from');
    const b = await agentWithKey('dg-to');
    const put = await svc.post('/secrets/put', { name: 'shared', value: 'x' }, svc.device(a.key));
    expect(put.status).toBe(200);
    for (let round = 0; round < backend.rounds; round++) {
      const created = await svc.post(
        '/delegate',
        { to_agent: 'dg-to', scope: ['secrets/get:shared', 'agents/get'], ttl_seconds: 600 },
        svc.device(a.key),
      );
      expect(created.status).toBe(201);
      const id = created.body.delegation_id as string;
      const delegated = { ...svc.device(b.key), 'x-agentpack-delegation': id };
      // Revoked by the delegator, the delegate or the bridge.
      const revokers = [svc.device(a.key), svc.device(b.key), svc.bridge];
      const race = await raceUsesAgainstCut({
        workers: Math.max(4, N / 2),
        use: (w, i) =>
          (w + i) % 3 === 0
            ? svc.post('/agents/get', {}, delegated)
            : svc.post('/secrets/get', { name: 'shared' }, delegated),
        cut: () =>
          svc.post('/delegate/revoke', { delegation_id: id }, revokers[round % revokers.length]!),
      });
      expectCutHolds(race, { status: 403, code: 'permission_denied' });
    }
  });

  it('of run revoke against use, no request of the run or of its child that starts after /runs/revoke returned succeeds', async () => {
    const { key } = await agentWithKey('run-agent');
    const newKey = () => {
      const k = generateDeviceKeys().signing;
      return { publicKey: Buffer.from(k.publicKey).toString('base64url'), seed: k.privateKey };
    };
    const asRun = (run: { id: string; seed: Uint8Array }, path: string, body: object) => {
      const raw = Buffer.from(JSON.stringify(body));
      return svc.request(path, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-agentpack-run': run.id,
          ...signRequest({
            method: 'POST',
            path,
            body: raw,
            signingSeed: run.seed,
            nowMs: Date.now(),
          }),
        },
        body: raw,
      });
    };
    for (let round = 0; round < backend.rounds; round++) {
      const rootKey = newKey();
      const spawned = await svc.post(
        '/runs/spawn',
        {
          task: `root ${round}`,
          scope: ['agents/get', 'runs/spawn'],
          ttl_seconds: 600,
          public_key: rootKey.publicKey,
        },
        svc.device(key),
      );
      expect(spawned.status, spawned.text).toBe(201);
      const root = { id: spawned.body.run_id as string, seed: rootKey.seed };
      const childKey = newKey();
      const child = await asRun(root, '/runs/spawn', {
        task: 'child',
        scope: ['agents/get'],
        ttl_seconds: 600,
        public_key: childKey.publicKey,
      });
      expect(child.status, child.text).toBe(201);
      const runs = [root, { id: child.body.run_id as string, seed: childKey.seed }];
      // Revoked by the bridge or by the agent's device key; the child goes with its root.
      const revokers = [svc.bridge, svc.device(key)];
      const race = await raceUsesAgainstCut({
        workers: Math.max(4, N / 2),
        use: (w) => asRun(runs[w % 2]!, '/agents/get', {}),
        cut: () =>
          svc.post('/runs/revoke', { run_id: root.id }, revokers[round % revokers.length]!),
      });
      expectCutHolds(race, { status: 401, code: 'unauthenticated' });
    }
  });

  it('of one signed request replayed concurrently, exactly one is served and the rest get 401', async () => {
    await agentWithKey('replay-agent');
    for (let round = 0; round < backend.rounds; round++) {
      const keys = generateDeviceKeys();
      const code = await svc.post(
        '/device/enrollments/create',
        { agent_id: 'replay-agent' },
        svc.bridge,
      );
      expect(code.status).toBe(201);
      const enrolled = await svc.post(
        '/device/enroll',
        {
          code: code.body.code,
          sealing_public_key: Buffer.from(keys.sealing.publicKey).toString('base64url'),
          signing_public_key: Buffer.from(keys.signing.publicKey).toString('base64url'),
        },
        {},
      );
      expect(enrolled.status, enrolled.text).toBe(201);
      const deviceKey = openEnrolledKey(enrolled.body, keys.sealing);
      const raw = Buffer.from(JSON.stringify({ name: `replayed_${round}`, value: 'v' }));
      const headers = {
        'content-type': 'application/json',
        'x-agentpack-device-key': deviceKey,
        ...signRequest({
          method: 'POST',
          path: '/secrets/put',
          body: raw,
          signingSeed: keys.signing.privateKey,
          nowMs: Date.now(),
        }),
      };
      const results = await together(
        Array.from({ length: N }, () => ({ path: '/secrets/put', body: raw.toString(), headers })),
      );
      const statuses = results.map((r) => r.status);
      expect(
        statuses.filter((s) => s === 200),
        `round ${round}: ${statuses}`,
      ).toHaveLength(1);
      expect(statuses.filter((s) => s === 401)).toHaveLength(N - 1);
      const meta = await svc.post(
        '/secrets/metadata',
        { name: `replayed_${round}` },
        svc.device(deviceKey),
      );
      expect(meta.body.current_version).toBe(1);
    }
  });

  it('of one enrollment code used concurrently, exactly one device enrolls', async () => {
    await agentWithKey('enroll-agent');
    for (let round = 0; round < backend.rounds; round++) {
      const created = await svc.post(
        '/device/enrollments/create',
        { agent_id: 'enroll-agent' },
        svc.bridge,
      );
      expect(created.status).toBe(201);
      const sealingKeys: Array<ReturnType<typeof generateDeviceKeys>['sealing']> = [];
      const results = await together(
        Array.from({ length: N }, () => {
          const keys = generateDeviceKeys();
          sealingKeys.push(keys.sealing);
          return {
            path: '/device/enroll',
            body: {
              code: created.body.code,
              sealing_public_key: Buffer.from(keys.sealing.publicKey).toString('base64url'),
              signing_public_key: Buffer.from(keys.signing.publicKey).toString('base64url'),
            },
            headers: {},
          };
        }),
      );
      const statuses = results.map((r) => r.status);
      expect(
        statuses.filter((s) => s === 201),
        `round ${round}: ${statuses}`,
      ).toHaveLength(1);
      expect(statuses.filter((s) => s === 401)).toHaveLength(N - 1);
      const won = results.findIndex((r) => r.status === 201);
      const winner = results[won]!.body;
      const keys = await svc.store.find('device_keys', 'agent_id', 'enroll-agent', 10_000);
      // The bridge-issued key, plus one enrolled key per round: never two for one code.
      expect(
        keys.filter((k) => k.doc.fingerprint !== undefined && k.doc.fingerprint !== null),
      ).toHaveLength(round + 1);
      expect(keys.some((k) => k.doc.key_id === winner.key_id)).toBe(true);
      const winnerKey = openEnrolledKey(winner, sealingKeys[won]!);
      expect((await svc.post('/agents/get', {}, svc.device(winnerKey))).status).toBe(200);
    }
  });

  it('of issue against disable, no key is issued to a disabled agent', async () => {
    for (let round = 0; round < backend.rounds; round++) {
      const agentId = `iss-agent-${round}`;
      const created = await svc.post(
        '/agents/create',
        { display_name: agentId, agent_id: agentId },
        svc.bridge,
      );
      expect(created.status).toBe(201);
      const issued = new Map<string, string>(); // key_id -> device key
      const race = await raceUsesAgainstCut({
        workers: Math.max(4, N / 2),
        use: async () => {
          const res = await svc.post('/device/issue', { agent_id: agentId }, svc.bridge);
          if (res.status === 201) issued.set(res.body.key_id, res.body.device_key);
          // Reported as 200 for the race harness: a success.
          return res.status === 201 ? { ...res, status: 200 } : res;
        },
        cut: () => svc.post('/agents/disable', { agent_id: agentId }, svc.bridge),
      });
      expectCutHolds(race, { status: 403, code: 'permission_denied' });
      // After the race, still refused.
      const late = await svc.post('/device/issue', { agent_id: agentId }, svc.bridge);
      expect(late.status).toBe(403);
      // The store holds exactly the keys that were answered 201: none written for a refusal.
      const stored = await svc.store.find('device_keys', 'agent_id', agentId, 10_000);
      expect(stored.map((s) => s.doc.key_id).sort()).toEqual([...issued.keys()].sort());
      // Every issue committed before the disable.
      const events = await svc.store.auditEvents(1_000_000);
      const issues = auditFor(events, 'device_key.issue', agentId);
      const disables = auditFor(events, 'agent.disable', agentId);
      expect(disables).toHaveLength(1);
      expect(issues.map((e) => e.target.key_id).sort()).toEqual([...issued.keys()].sort());
      if (backend.auditInCommitOrder) {
        const disableIndex = events.indexOf(disables[0]!);
        for (const e of issues) expect(events.indexOf(e)).toBeLessThan(disableIndex);
      }
      // And none of those keys acts for the disabled agent.
      for (const key of [...issued.values()].slice(0, 3)) {
        expect((await svc.post('/agents/get', {}, svc.device(key))).status).toBe(403);
      }
    }
  });

  it('of rotate against rotate on one key, one wins (201), the others get 401, one key remains', async () => {
    let current = await agentWithKey('rot-agent');
    const width = Math.max(4, Math.floor((N * 3) / 4));
    for (let round = 0; round < backend.rounds; round++) {
      const results = await together(
        Array.from({ length: width }, () => ({
          path: '/device/issue',
          body: { rotate: true },
          headers: svc.device(current.key),
        })),
      );
      const winners = results.filter((r) => r.status === 201);
      expect(
        results.map((r) => r.status),
        `round ${round}`,
      ).toEqual(expect.arrayContaining([201]));
      expect(winners, `round ${round}: ${results.map((r) => r.status)}`).toHaveLength(1);
      for (const loser of results.filter((r) => r.status !== 201)) {
        expect(loser.status, loser.text).toBe(401);
        expect(loser.body.error.code).toBe('unauthenticated');
      }
      const winner = { key: winners[0]!.body.device_key, keyId: winners[0]!.body.key_id };
      // One lineage, one active key: the winner's. The rotated key is revoked.
      const keys = await svc.store.find('device_keys', 'agent_id', 'rot-agent', 10_000);
      expect(keys).toHaveLength(round + 2);
      expect(keys.filter((k) => k.doc.revoked_at === null).map((k) => k.doc.key_id)).toEqual([
        winner.keyId,
      ]);
      expect(keys.find((k) => k.doc.key_id === current.keyId)?.doc.revoked_at).not.toBeNull();
      const rotations = (await svc.store.auditEvents(1_000_000)).filter(
        (e) => e.action === 'device_key.rotate' && e.details?.['revoked_key_id'] === current.keyId,
      );
      expect(rotations).toHaveLength(1);
      expect(rotations[0]!.target.key_id).toBe(winner.keyId);
      expect((await svc.post('/agents/get', {}, svc.device(winner.key))).status).toBe(200);
      expect((await svc.post('/agents/get', {}, svc.device(current.key))).status).toBe(401);
      current = winner;
    }
  });
});
