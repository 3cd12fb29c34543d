/**
 * Pruning (core/prune.ts over Store.pruneExpired), on SQLite and on the Firestore adapter
 * (@firestore-emulator/server, and the official emulator when FIRESTORE_EMULATOR_HOST names
 * one): nonces go at their expiry, enrollments and runs a day after theirs, in bounded rounds;
 * a pruned ancestor reads as revoked; the Firestore adapter's `ttl_at` is expiry + retention and
 * never shows in a read. Then who runs it: the local server's pruner (at start, on its timer,
 * stopped on close), `npm start` as a real process over HTTP, and `maintenance prune`.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore, Timestamp, type Firestore } from 'firebase-admin/firestore';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FIRESTORE_UNIVERSE, firestoreStore } from '../functions/src/adapters/firestore-store.js';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { PRUNE_MAX_ROUNDS, pruneExpired } from '../functions/src/core/prune.js';
import { runStatus } from '../functions/src/core/runs.js';
import { PRUNE_INTERVAL_MS, startPruning } from '../functions/src/local/pruning.js';
import type {
  EnrollmentDoc,
  RequestNonceDoc,
  RunDoc,
  Store,
} from '../functions/src/ports/store.js';
import { MAINTENANCE } from '../packages/cli/src/commands/maintenance.js';
import { startChild, type Child } from './helpers/child.js';
import { manualClock } from './helpers/clock.js';
import {
  officialEmulatorStore,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from './helpers/firestore-emulator.js';
import { capturingLogger } from './helpers/logs.js';
import { tempDir } from './helpers/temp-dir.js';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const T = Date.parse('2026-01-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

const nonce = (expiresMs: number): RequestNonceDoc => ({
  key_id: 'dk_1',
  expires_at: iso(expiresMs),
});
const enrollment = (id: string, expiresMs: number): EnrollmentDoc => ({
  enrollment_id: id,
  agent_id: 'agent-a',
  expected_fingerprint: null,
  replaces_key_id: null,
  label: null,
  created_at: iso(expiresMs - HOUR),
  expires_at: iso(expiresMs),
  used_at: null,
  key_id: null,
});
/** The agent of the hand-written runs: a run's status counts its agent (enabled here). */
const agentDoc = () => ({
  agent_id: 'agent-a',
  display_name: 'A',
  disabled: false,
  created_at: iso(T),
  updated_at: iso(T),
});
const run = (lineage: string[], expiresMs: number, ended: RunDoc['ended'] = null): RunDoc => {
  const id = lineage.at(-1)!;
  return {
    run_id: id,
    agent_id: 'agent-a',
    parent_run_id: lineage.at(-2) ?? null,
    root_run_id: lineage[0]!,
    lineage,
    task: 't',
    scope: ['secrets/get'],
    public_key: `pk-${id}`,
    created_at: iso(expiresMs - HOUR),
    expires_at: iso(expiresMs),
    ended,
    ended_at: ended === null ? null : iso(expiresMs - HOUR),
    spawned_by_key_id: null,
    live_agent_id: ended === null ? 'agent-a' : null,
  };
};

async function ids(store: Store, collection: 'request_nonces' | 'device_enrollments' | 'runs') {
  return (await store.scan(collection, null, 1000)).map((f) => f.id).sort();
}

interface Factory {
  name: string;
  open(): Promise<Store>;
}

const cleanups: Array<() => void> = [];
afterAll(() => cleanups.splice(0).forEach((c) => c()));

const sqliteFactory: Factory = {
  name: 'sqlite',
  async open() {
    const tmp = tempDir('agentpack-prune-');
    cleanups.push(tmp.remove);
    return openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') });
  },
};

let emulator: FirestoreEmulator | undefined;
const factories: Factory[] = [
  sqliteFactory,
  {
    name: 'firestore (@firestore-emulator/server)',
    async open() {
      if (emulator === undefined) throw new Error('emulator not started');
      return emulator.newStore();
    },
  },
];
if (process.env['FIRESTORE_EMULATOR_HOST'] !== undefined) {
  factories.push({
    name: `firestore (official emulator at ${process.env['FIRESTORE_EMULATOR_HOST']})`,
    open: async () => officialEmulatorStore('prune'),
  });
}

beforeAll(async () => {
  emulator = await startFirestoreEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});

describe.each(factories)('pruning: $name', (factory) => {
  it('deletes expired nonces at their expiry and keeps live ones; enrollments and runs wait', async () => {
    const store = await factory.open();
    await store.transact(async (tx) => {
      tx.set('request_nonces', 'n-past', nonce(T - 1));
      tx.set('request_nonces', 'n-older', nonce(T - HOUR));
      tx.set('request_nonces', 'n-now', nonce(T));
      tx.set('request_nonces', 'n-live', nonce(T + 60_000));
      tx.set('device_enrollments', 'e-past', enrollment('enr_past', T - 1));
      tx.set('runs', 'run_past', run(['run_past'], T - 1));
    });
    const clock = manualClock(T);
    expect(await pruneExpired({ store, clock })).toEqual({
      request_nonces: 2,
      device_enrollments: 0,
      runs: 0,
    });
    expect(await ids(store, 'request_nonces')).toEqual(['n-live', 'n-now']);
    expect(await ids(store, 'device_enrollments')).toEqual(['e-past']);
    expect(await ids(store, 'runs')).toEqual(['run_past']);
    // Nothing left to do: a second call deletes nothing.
    expect(await pruneExpired({ store, clock })).toEqual({
      request_nonces: 0,
      device_enrollments: 0,
      runs: 0,
    });
    clock.advance(60_001);
    expect((await pruneExpired({ store, clock })).request_nonces).toBe(2);
    expect(await ids(store, 'request_nonces')).toEqual([]);
    await store.close();
  });

  it('keeps enrollments and runs until a day past expires_at (a run reads expired), deletes them after', async () => {
    const store = await factory.open();
    await store.transact(async (tx) => {
      tx.set('device_enrollments', 'e1', enrollment('enr_1', T));
      tx.set('device_enrollments', 'e2', enrollment('enr_2', T + HOUR));
      tx.set('runs', 'run_1', run(['run_1'], T));
      tx.set('runs', 'run_2', run(['run_2'], T, 'completed'));
      tx.set('runs', 'run_3', run(['run_3'], T + HOUR));
      tx.set('agents', 'agent-a', agentDoc());
    });
    const clock = manualClock(T + DAY);
    const none = { request_nonces: 0, device_enrollments: 0, runs: 0 };
    // Exactly a day after: still kept, and the run still answers "expired".
    expect(await pruneExpired({ store, clock })).toEqual(none);
    expect(await ids(store, 'device_enrollments')).toEqual(['e1', 'e2']);
    const run1 = (await store.get('runs', 'run_1'))!;
    expect(await runStatus(store, run1, clock.now())).toBe('expired');
    expect(await runStatus(store, (await store.get('runs', 'run_2'))!, clock.now())).toBe(
      'completed',
    );

    clock.advance(1);
    expect(await pruneExpired({ store, clock })).toEqual({
      request_nonces: 0,
      device_enrollments: 1,
      runs: 2,
    });
    expect(await ids(store, 'device_enrollments')).toEqual(['e2']);
    expect(await ids(store, 'runs')).toEqual(['run_3']);
    expect(await store.get('runs', 'run_1')).toBeNull();

    clock.set(T + HOUR + DAY + 1);
    expect(await pruneExpired({ store, clock })).toEqual({
      request_nonces: 0,
      device_enrollments: 1,
      runs: 1,
    });
    expect(await ids(store, 'device_enrollments')).toEqual([]);
    expect(await ids(store, 'runs')).toEqual([]);
    await store.close();
  });

  it(`works in rounds of the limit, at most ${PRUNE_MAX_ROUNDS} a call, and counts every deletion`, async () => {
    const store = await factory.open();
    const total = PRUNE_MAX_ROUNDS + 3;
    await store.transact(async (tx) => {
      for (let i = 0; i < total; i++) {
        tx.set('request_nonces', `n-${String(i).padStart(2, '0')}`, nonce(T - 1000 - i));
      }
      tx.set('request_nonces', 'n-live', nonce(T + 1000));
      for (let i = 0; i < 3; i++) tx.set('runs', `run_${i}`, run([`run_${i}`], T - DAY - 1));
    });
    const clock = manualClock(T);
    // A limit of 1: one document per round, so the round bound stops the nonces at 20.
    expect(await pruneExpired({ store, clock }, 1)).toEqual({
      request_nonces: PRUNE_MAX_ROUNDS,
      device_enrollments: 0,
      runs: 3,
    });
    expect(await ids(store, 'request_nonces')).toHaveLength(4);
    // The next call goes on where it stopped; with a limit of 2 the last round is short.
    expect(await pruneExpired({ store, clock }, 2)).toEqual({
      request_nonces: 3,
      device_enrollments: 0,
      runs: 0,
    });
    expect(await ids(store, 'request_nonces')).toEqual(['n-live']);
    for (const limit of [0, 501, 1.5]) {
      await expect(pruneExpired({ store, clock }, limit)).rejects.toThrow(/limit/);
    }
    await store.close();
  });

  it('a pruned ancestor makes its descendants revoked (the lineage check fails closed)', async () => {
    const store = await factory.open();
    const root = run(['run_root'], T - DAY - HOUR);
    const child = run(['run_root', 'run_child'], T + HOUR);
    const grandchild = run(['run_root', 'run_child', 'run_grand'], T + HOUR);
    await store.transact(async (tx) => {
      for (const r of [root, child, grandchild]) tx.set('runs', r.run_id, r);
      tx.set('agents', 'agent-a', agentDoc());
    });
    const clock = manualClock(T);
    expect(await runStatus(store, child, clock.now())).toBe('active');
    expect(await runStatus(store, grandchild, clock.now())).toBe('active');
    expect((await pruneExpired({ store, clock })).runs).toBe(1);
    expect(await store.get('runs', 'run_root')).toBeNull();
    expect(await runStatus(store, child, clock.now())).toBe('revoked');
    expect(await runStatus(store, grandchild, clock.now())).toBe('revoked');
    await store.close();
  });

  it('reads answer expiring documents exactly as written, by every kind of read', async () => {
    const store = await factory.open();
    const r = run(['run_read'], T);
    const e = enrollment('enr_read', T);
    const n = nonce(T);
    await store.transact(async (tx) => {
      tx.set('runs', 'run_read', r);
      tx.set('device_enrollments', 'e-read', e);
      tx.set('request_nonces', 'n-read', n);
    });
    expect(await store.get('runs', 'run_read')).toEqual(r);
    expect(await store.get('device_enrollments', 'e-read')).toEqual(e);
    expect(await store.get('request_nonces', 'n-read')).toEqual(n);
    expect(await store.find('runs', 'public_key', r.public_key, 1)).toEqual([
      { id: 'run_read', doc: r },
    ]);
    const tree = { where: ['root_run_id', 'run_read'], orderBy: 'run_id', limit: 5 } as const;
    expect(await store.query('runs', tree)).toEqual([{ id: 'run_read', doc: r }]);
    expect(await store.scan('runs', null, 5)).toEqual([{ id: 'run_read', doc: r }]);
    const inTx = await store.transact(async (tx) => ({
      get: await tx.get('runs', 'run_read'),
      find: await tx.find('runs', 'live_agent_id', 'agent-a', 5),
      query: await tx.query('runs', tree),
    }));
    expect(inTx).toEqual({
      get: r,
      find: [{ id: 'run_read', doc: r }],
      query: [{ id: 'run_read', doc: r }],
    });
    await store.close();
  });
});

describe('Firestore adapter: ttl_at', () => {
  it('stores ttl_at = expiry + retention as a Timestamp on each expiring collection, and only there', async () => {
    const name = `demo-${randomUUID().slice(0, 12)}`;
    const app = initializeApp({ projectId: name }, name);
    const db: Firestore = getFirestore(app);
    const official = process.env['FIRESTORE_EMULATOR_HOST'];
    delete process.env['FIRESTORE_EMULATOR_HOST'];
    try {
      db.settings({ host: emulator!.host, ssl: false, universeDomain: FIRESTORE_UNIVERSE });
    } finally {
      if (official !== undefined) process.env['FIRESTORE_EMULATOR_HOST'] = official;
    }
    const store = firestoreStore(db);
    await store.transact(async (tx) => {
      tx.set('request_nonces', 'n1', nonce(T));
      tx.set('device_enrollments', 'e1', enrollment('enr_1', T));
      tx.set('runs', 'run_1', run(['run_1'], T));
      tx.set('agents', 'agent-a', {
        agent_id: 'agent-a',
        display_name: 'A',
        disabled: false,
        created_at: iso(T),
        updated_at: iso(T),
      });
    });
    const raw = async (collection: string, id: string) =>
      (await db.collection(collection).doc(id).get()).data()!;
    const ttl = async (collection: string, id: string) =>
      ((await raw(collection, id))['ttl_at'] as Timestamp).toMillis();
    expect(await ttl('request_nonces', 'n1')).toBe(T);
    expect(await ttl('device_enrollments', 'e1')).toBe(T + DAY);
    expect(await ttl('runs', 'run_1')).toBe(T + DAY);
    expect((await raw('runs', 'run_1'))['ttl_at']).toBeInstanceOf(Timestamp);
    expect(await raw('agents', 'agent-a')).not.toHaveProperty('ttl_at');
    await store.close();
  });
});

describe('the local server pruner', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('prunes at start and on every tick, logs non-zero counts only, and stops with the store', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const store = await sqliteFactory.open();
    const clock = manualClock(T);
    const { logger, entries } = capturingLogger();
    await store.transact(async (tx) => {
      tx.set('request_nonces', 'n1', nonce(T - 1));
      tx.set('request_nonces', 'n2', nonce(T + 5 * 60_000));
      tx.set('runs', 'run_1', run(['run_1'], T - DAY - 1));
    });
    const pruner = startPruning({ store, clock }, logger);
    expect(await pruner.first).toEqual({ request_nonces: 1, device_enrollments: 0, runs: 1 });
    const pruned = () => entries().filter((e) => e['message'] === 'store.pruned');
    expect(pruned()).toHaveLength(1);
    expect(pruned()[0]).toMatchObject({
      severity: 'INFO',
      request_nonces: 1,
      device_enrollments: 0,
      runs: 1,
    });

    // A tick that finds nothing logs nothing.
    vi.advanceTimersByTime(PRUNE_INTERVAL_MS);
    await pruner.settled();
    expect(pruned()).toHaveLength(1);
    // The next tick comes ten minutes later, and prunes what expired meanwhile.
    clock.advance(PRUNE_INTERVAL_MS);
    vi.advanceTimersByTime(PRUNE_INTERVAL_MS - 1);
    await pruner.settled();
    expect(await store.get('request_nonces', 'n2')).not.toBeNull();
    vi.advanceTimersByTime(1);
    await pruner.settled();
    expect(await store.get('request_nonces', 'n2')).toBeNull();
    expect(pruned()).toHaveLength(2);
    expect(pruned()[1]).toMatchObject({ request_nonces: 1, device_enrollments: 0, runs: 0 });
    await pruner.stop();

    // Stopped: no tick runs any more, even with something to prune.
    await store.transact(async (tx) => tx.set('request_nonces', 'n3', nonce(T)));
    vi.advanceTimersByTime(3 * PRUNE_INTERVAL_MS);
    expect(vi.getTimerCount()).toBe(0);
    expect(await store.get('request_nonces', 'n3')).not.toBeNull();
    expect(entries().filter((e) => e['severity'] !== 'INFO')).toEqual([]);
    await store.close();
  });

  it('logs a failed run as a warning and never rejects', async () => {
    const store = await sqliteFactory.open();
    await store.close();
    const { logger, entries } = capturingLogger();
    const pruner = startPruning({ store, clock: manualClock(T) }, logger);
    expect(await pruner.first).toBeNull();
    await pruner.stop();
    expect(entries()).toMatchObject([
      { severity: 'WARNING', message: 'store.prune_failed', error: 'Error: the store is closed' },
    ]);
  });
});

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('npm start (a real local server over HTTP)', () => {
  let child: Child | undefined;
  afterEach(async () => {
    await child?.stop('SIGKILL');
    child = undefined;
  });

  // Run ids of the real grammar, so the well-known route looks them up.
  const OLD = `run_${'old'.padEnd(22, '0')}`;
  const RECENT = `run_${'recent'.padEnd(22, '0')}`;

  it('prunes what expired before it started: a pruned run is 404, a run within its day reads expired', async () => {
    const main = join(root, 'functions/lib/local/main.js');
    if (!existsSync(main)) throw new Error('functions/lib is not built: run npm run build first');
    const tmp = tempDir('agentpack-prune-start-');
    cleanups.push(tmp.remove);
    const env = {
      PATH: process.env['PATH'],
      AGENTPACK_DATA_DIR: tmp.dir,
      AGENTPACK_BRIDGE_KEYS: 'prune-test-bridge-key-0123456789abcdefghij',
      PORT: '0',
    };
    const listening = async (c: Child) =>
      (await c.waitFor(/listening on (http:\/\/[0-9.:]+)/)).replace('listening on ', '');
    // A first start makes the data dir (store, key files) as a server's own, then stops.
    child = startChild(process.execPath, [main], env);
    await listening(child);
    expect(await child.stop('SIGTERM')).toBe(0);
    // The server runs on the system clock, so these times are relative to it.
    const now = Date.now();
    const store = openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') });
    await store.transact(async (tx) => {
      tx.set('request_nonces', 'n-spent', nonce(now - 60_000));
      tx.set('request_nonces', 'n-live', nonce(now + HOUR));
      tx.set('device_enrollments', 'e-old', enrollment('enr_old', now - DAY - HOUR));
      tx.set('runs', OLD, run([OLD], now - DAY - HOUR));
      tx.set('runs', RECENT, run([RECENT], now - HOUR));
      tx.set('agents', 'agent-a', agentDoc());
    });
    await store.close();

    child = startChild(process.execPath, [main], env);
    const url = await listening(child);
    const line = await child.waitFor(/\{[^\n]*"message":"store\.pruned"[^\n]*\}\n/);
    expect(JSON.parse(line)).toMatchObject({
      severity: 'INFO',
      request_nonces: 1,
      device_enrollments: 1,
      runs: 1,
    });
    const identity = (id: string) => fetch(`${url}/.well-known/agentpack-agent-identity/${id}`);
    expect((await identity(OLD)).status).toBe(404);
    const recent = await identity(RECENT);
    expect(recent.status).toBe(200);
    expect(await recent.json()).toMatchObject({ run_id: RECENT, status: 'expired' });
    expect(await child.stop('SIGTERM')).toBe(0);
    child = undefined;

    const after = openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') });
    expect(await ids(after, 'request_nonces')).toEqual(['n-live']);
    expect(await ids(after, 'device_enrollments')).toEqual([]);
    expect(await ids(after, 'runs')).toEqual([RECENT]);
    await after.close();
  });
});

describe('maintenance prune', () => {
  const prune = MAINTENANCE.commands['prune']!;
  const io = (env: Record<string, string>, now?: number) => {
    const out = { stdout: '', stderr: '' };
    return {
      out,
      io: {
        stdout: (t: string) => void (out.stdout += t),
        stderr: (t: string) => void (out.stderr += t),
        env,
        ...(now === undefined ? {} : { now: () => now }),
      },
    };
  };

  it('prunes the data dir store on its clock and prints the counts as one JSON line', async () => {
    const tmp = tempDir('agentpack-prune-cli-');
    cleanups.push(tmp.remove);
    const store = openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') });
    await store.transact(async (tx) => {
      tx.set('request_nonces', 'n1', nonce(T - 1));
      tx.set('request_nonces', 'n2', nonce(T + 1));
      tx.set('device_enrollments', 'e1', enrollment('enr_1', T - DAY - 1));
      tx.set('runs', 'run_1', run(['run_1'], T - DAY + 1));
    });
    await store.close();

    const first = io({}, T);
    expect(await prune.run(['--data-dir', tmp.dir], first.io)).toBe(0);
    expect(first.out.stdout).toBe('{"request_nonces":1,"device_enrollments":1,"runs":0}\n');
    expect(first.out.stderr).toBe('');
    // From the environment, later: the run's day is over.
    const second = io({ AGENTPACK_DATA_DIR: tmp.dir }, T + 2);
    expect(await prune.run([], second.io)).toBe(0);
    expect(JSON.parse(second.out.stdout)).toEqual({
      request_nonces: 1,
      device_enrollments: 0,
      runs: 1,
    });
    const after = openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') });
    expect(await ids(after, 'request_nonces')).toEqual([]);
    expect(await ids(after, 'runs')).toEqual([]);
    expect(await after.auditEvents(10)).toEqual([]);
    await after.close();
  });

  it('refuses a data dir with no store, creating nothing', async () => {
    const tmp = tempDir('agentpack-prune-cli-');
    cleanups.push(tmp.remove);
    const dir = join(tmp.dir, 'missing');
    await expect(prune.run(['--data-dir', dir], io({}, T).io)).rejects.toThrow(/no store in/);
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses options it does not know', async () => {
    await expect(prune.run(['--batch', '5'], io({}, T).io)).rejects.toMatchObject({
      exitCode: 2,
    });
  });
});
