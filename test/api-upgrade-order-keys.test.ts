/**
 * The upgrade of a store written before the operator plane (`maintenance migrate-digests`, whose
 * job grew): device keys, delegations and runs without their `list_key`, and (Firestore) audit
 * events without their `order_key`, are missing from the lists and the audit query until it has
 * run, and are there, in their place, after; a second run changes nothing. On SQLite and on
 * Firestore (the in-process emulator always; the official one when FIRESTORE_EMULATOR_HOST is
 * set), over real HTTP.
 */
import { randomUUID } from 'node:crypto';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIT_COLLECTION,
  FIRESTORE_UNIVERSE,
  firestoreStore,
} from '../functions/src/adapters/firestore-store.js';
import { migrateDigests } from '../functions/src/core/digest-migration.js';
import type { Store } from '../functions/src/ports/store.js';
import { manualClock } from './helpers/clock.js';
import { startFirestoreEmulator, type FirestoreEmulator } from './helpers/firestore-emulator.js';
import { startTestService, type TestService } from './helpers/service.js';

let emulator: FirestoreEmulator | undefined;
beforeAll(async () => {
  emulator = await startFirestoreEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});

/** A Firestore client of a fresh project, on the in-process emulator or the official one. */
function firestore(host: string | null): Firestore {
  const name = `demo-upgrade-${randomUUID().slice(0, 12)}`;
  const db = getFirestore(initializeApp({ projectId: name }, name));
  if (host === null) {
    db.settings({ universeDomain: FIRESTORE_UNIVERSE });
    return db;
  }
  // As in helpers/firestore-emulator.ts: the variable would override `host`.
  const official = process.env['FIRESTORE_EMULATOR_HOST'];
  delete process.env['FIRESTORE_EMULATOR_HOST'];
  try {
    db.settings({ host, ssl: false, universeDomain: FIRESTORE_UNIVERSE });
  } finally {
    if (official !== undefined) process.env['FIRESTORE_EMULATOR_HOST'] = official;
  }
  return db;
}

interface Backend {
  name: string;
  db(): Firestore | null;
  /**
   * False on the in-process emulator: its ordered queries also return documents without the
   * order field, and it ignores startAfter on document ids (so scans run in one page there).
   */
  faithful: boolean;
}
const backends: Backend[] = [
  { name: 'sqlite', db: () => null, faithful: true },
  { name: 'firestore (in-process emulator)', db: () => firestore(emulator!.host), faithful: false },
];
if (process.env['FIRESTORE_EMULATOR_HOST'] !== undefined) {
  backends.push({
    name: 'firestore (official emulator)',
    db: () => firestore(null),
    faithful: true,
  });
}

const OLD = '2025-12-01T00:00:00.000Z';
const RUN_ID = 'run_legacy00000000000000';

describe.each(backends)(
  'upgrade of list and order keys: $name',
  { timeout: 120_000 },
  (backend) => {
    let svc: TestService;
    const clock = manualClock(Date.parse('2026-03-01T00:00:00.000Z'));
    afterEach(async () => {
      await svc?.close();
    });

    it('gives old documents and audit events their keys, once, so every list reaches them', async () => {
      const db = backend.db();
      const store: Store | undefined = db === null ? undefined : firestoreStore(db);
      svc = await startTestService({ clock, ...(store === undefined ? {} : { store }) });
      await svc.post('/agents/create', { display_name: 'a', agent_id: 'agent-a' }, svc.bridge);
      await svc.post('/agents/create', { display_name: 'b', agent_id: 'agent-b' }, svc.bridge);
      clock.advance(1000);
      const dk = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body
        .device_key as string;
      await svc.store.transact(async (tx) => {
        const base = { created_at: OLD, revoked_at: null };
        tx.set('device_keys', 'legacy-digest-1', {
          ...base,
          key_id: 'dk_legacy0000000001',
          agent_id: 'agent-a',
          label: null,
          expires_at: null,
          digest: 'keyed',
        });
        tx.set('delegations', 'dg_legacy000000000000001', {
          ...base,
          delegation_id: 'dg_legacy000000000000001',
          from_agent: 'agent-a',
          to_agent: 'agent-b',
          scope: ['agents/get'],
          expires_at: '2027-01-01T00:00:00.000Z',
        });
        tx.set('runs', RUN_ID, {
          run_id: RUN_ID,
          agent_id: 'agent-a',
          parent_run_id: null,
          root_run_id: RUN_ID,
          lineage: [RUN_ID],
          task: 'from before the lists',
          scope: ['agents/get'],
          public_key: 'A'.repeat(43),
          created_at: OLD,
          expires_at: '2027-01-01T00:00:00.000Z',
          ended: null,
          ended_at: null,
          live_agent_id: 'agent-a',
        });
      });
      const oldEvent = {
        category: 'auth',
        action: 'agent.create',
        actor: { kind: 'bridge', bridge_key_id: 'bk_000000000000' },
        target: { agent_id: 'agent-old' },
        at: OLD,
      };
      if (db !== null) await db.collection(AUDIT_COLLECTION).add(oldEvent);

      const firsts = async () => {
        const as = svc.device(dk);
        const key = await svc.post('/device/list', {}, as);
        const dg = await svc.post('/delegations/list', {}, as);
        const run = await svc.post('/runs/list', {}, as);
        const audit = await svc.post('/audit/query', { agent_id: 'agent-old' }, svc.bridge);
        return [
          key.body.keys[0]?.key_id,
          dg.body.delegations[0]?.delegation_id,
          run.body.runs[0]?.run_id,
          audit.body.events[0]?.target.agent_id,
        ];
      };
      if (backend.faithful) {
        // The new key is listed, the old one is not; the old delegation, run and event are missing.
        expect(await firsts()).toEqual([
          expect.stringMatching(/^dk_(?!legacy)/),
          undefined,
          undefined,
          undefined,
        ]);
      }
      // Every row is keyed already: the digest step moves nothing, whatever its key.
      const digestKey = Buffer.alloc(32, 7);
      const batchSize = backend.faithful ? 2 : 200;
      const first = await migrateDigests({ store: svc.store, digestKey, clock, batchSize });
      expect(first).toEqual({
        scanned: 2,
        moved: 0,
        list_keys: 3,
        audit_order_keys: db === null ? 0 : 1,
      });
      expect(await firsts()).toEqual([
        'dk_legacy0000000001',
        'dg_legacy000000000000001',
        RUN_ID,
        db === null ? undefined : 'agent-old',
      ]);
      const again = await migrateDigests({ store: svc.store, digestKey, clock, batchSize });
      expect(again).toMatchObject({ moved: 0, list_keys: 0, audit_order_keys: 0 });
      // The job changed no document's meaning: the old run is still active, the key unrevoked.
      const runs = await svc.post('/runs/list', { status: 'all' }, svc.device(dk));
      expect(runs.body.runs).toEqual([
        expect.objectContaining({ run_id: RUN_ID, status: 'active' }),
      ]);
      const keys = await svc.post('/device/list', { include_revoked: true }, svc.device(dk));
      expect(keys.body.keys.map((k: any) => k.revoked_at)).toEqual([null, null]);
    });
  },
);
