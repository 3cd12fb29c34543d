/**
 * The store contract: both adapters behave the same. Runs on SQLite always and on the
 * Firestore adapter against @firestore-emulator/server. That emulator does not isolate
 * transactions, so the concurrency cases run on SQLite, and on the official emulator only when
 * FIRESTORE_EMULATOR_HOST names one.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import {
  AUDIT_COLLECTION,
  FIRESTORE_UNIVERSE,
  firestoreStore,
} from '../functions/src/adapters/firestore-store.js';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import type { AuditEvent } from '../functions/src/core/audit.js';
import type { AgentDoc, DeviceKeyDoc, Store } from '../functions/src/ports/store.js';
import {
  officialEmulatorStore,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from './helpers/firestore-emulator.js';
import { tempDir } from './helpers/temp-dir.js';

const agent = (id: string, name = 'A'): AgentDoc => ({
  agent_id: id,
  display_name: name,
  disabled: false,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});
const key = (keyId: string, agentId: string): DeviceKeyDoc => ({
  key_id: keyId,
  agent_id: agentId,
  label: null,
  created_at: '2026-01-01T00:00:00.000Z',
  expires_at: null,
  revoked_at: null,
});
const event = (agentId: string): AuditEvent => ({
  category: 'auth',
  action: 'agent.create',
  actor: { kind: 'bridge', bridge_key_id: 'bk_test' },
  target: { agent_id: agentId },
  at: '2026-01-01T00:00:00.000Z',
});

interface Factory {
  name: string;
  open(): Promise<Store>;
  /** Whether transactions isolate concurrent writers on this backend. */
  isolates: boolean;
  /** Whether queries honour orderBy(documentId()) and startAfter on this backend. */
  ordersById: boolean;
}

const sqliteFactory: Factory = {
  name: 'sqlite',
  isolates: true,
  ordersById: true,
  async open() {
    const tmp = tempDir();
    return openSqliteStore({ file: `${tmp.dir}/s.sqlite` });
  },
};

let emulator: FirestoreEmulator | undefined;
const firestoreFactory: Factory = {
  name: 'firestore (@firestore-emulator/server)',
  isolates: false,
  ordersById: false,
  async open() {
    if (emulator === undefined) throw new Error('emulator not started');
    return emulator.newStore();
  },
};

const factories: Factory[] = [sqliteFactory, firestoreFactory];
if (process.env['FIRESTORE_EMULATOR_HOST'] !== undefined) {
  factories.push({
    name: `firestore (official emulator at ${process.env['FIRESTORE_EMULATOR_HOST']})`,
    isolates: true,
    ordersById: true,
    open: async () => officialEmulatorStore('contract'),
  });
}

beforeAll(async () => {
  emulator = await startFirestoreEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});

describe.each(factories)('store contract: $name', (factory) => {
  it('gets null for a missing document and the document after a committed set', async () => {
    const store = await factory.open();
    expect(await store.get('agents', 'nobody')).toBeNull();
    await store.transact(async (tx) => tx.set('agents', 'a1', agent('a1')));
    expect(await store.get('agents', 'a1')).toEqual(agent('a1'));
    await store.close();
  });

  it('finds by an indexed field, only matches, within the limit', async () => {
    const store = await factory.open();
    await store.transact(async (tx) => {
      tx.set('device_keys', 'd1', key('dk_1', 'a1'));
      tx.set('device_keys', 'd2', key('dk_2', 'a1'));
      tx.set('device_keys', 'd3', key('dk_3', 'a2'));
    });
    const byAgent = await store.find('device_keys', 'agent_id', 'a1', 10);
    expect(byAgent.map((f) => f.id).sort()).toEqual(['d1', 'd2']);
    expect(await store.find('device_keys', 'agent_id', 'a1', 1)).toHaveLength(1);
    const inTx = await store.transact((tx) => tx.find('device_keys', 'key_id', 'dk_3', 1));
    expect(inTx).toEqual([{ id: 'd3', doc: key('dk_3', 'a2') }]);
    expect(await store.find('device_keys', 'key_id', 'dk_none', 1)).toEqual([]);
    await store.close();
  });

  it('queries by an equality, ordered, strictly after a value, within a limit', async () => {
    const store = await factory.open();
    const run = (id: string, root: string, ended: 'revoked' | null, expires: string) => ({
      run_id: id,
      agent_id: 'a1',
      parent_run_id: null,
      root_run_id: root,
      lineage: [id],
      task: 't',
      scope: [],
      public_key: `pk-${id}`,
      created_at: '2026-01-01T00:00:00.000Z',
      expires_at: expires,
      ended,
      ended_at: null,
      spawned_by_key_id: null,
      live_agent_id: ended === null ? 'a1' : null,
    });
    // Written out of order, with ids unrelated to the document ids' order.
    await store.transact(async (tx) => {
      tx.set('runs', 'z1', run('run_c', 'r1', null, '2026-01-01T00:03:00.000Z'));
      tx.set('runs', 'z2', run('run_a', 'r1', 'revoked', '2026-01-01T00:01:00.000Z'));
      tx.set('runs', 'z3', run('run_d', 'r2', null, '2026-01-01T00:04:00.000Z'));
      tx.set('runs', 'z4', run('run_b', 'r1', null, '2026-01-01T00:02:00.000Z'));
    });
    const ids = (found: { doc: { run_id: string } }[]) => found.map((f) => f.doc.run_id);
    const tree = { where: ['root_run_id', 'r1'], orderBy: 'run_id', limit: 2 } as const;
    expect(ids(await store.query('runs', tree))).toEqual(['run_a', 'run_b']);
    expect(ids(await store.query('runs', { ...tree, after: 'run_b' }))).toEqual(['run_c']);
    expect(await store.query('runs', { ...tree, after: 'run_c' })).toEqual([]);
    const live = await store.transact((tx) =>
      tx.query('runs', {
        where: ['live_agent_id', 'a1'],
        orderBy: 'expires_at',
        after: '2026-01-01T00:02:30.000Z',
        limit: 10,
      }),
    );
    expect(ids(live)).toEqual(['run_c', 'run_d']);
    expect(live[0]!.id).toBe('z1');
    await store.close();
  });

  it('prunes an expiring collection: at most the limit, only before the time, answering how many', async () => {
    const store = await factory.open();
    const nonce = (expires: string) => ({ key_id: 'dk_1', expires_at: expires });
    await store.transact(async (tx) => {
      tx.set('request_nonces', 'n1', nonce('2026-01-01T00:00:01.000Z'));
      tx.set('request_nonces', 'n2', nonce('2026-01-01T00:00:02.000Z'));
      tx.set('request_nonces', 'n3', nonce('2026-01-01T00:00:03.000Z'));
      tx.set('request_nonces', 'n4', nonce('2026-01-01T00:00:04.000Z'));
      tx.set('agents', 'a1', agent('a1'));
    });
    const before = '2026-01-01T00:00:04.000Z';
    const left = async () => (await store.scan('request_nonces', null, 10)).map((f) => f.id).sort();
    expect(await store.pruneExpired('request_nonces', before, 2)).toBe(2);
    expect(await left()).toHaveLength(2);
    expect(await store.pruneExpired('request_nonces', before, 2)).toBe(1);
    expect(await left()).toEqual(['n4']);
    expect(await store.pruneExpired('request_nonces', before, 2)).toBe(0);
    expect(await store.pruneExpired('runs', before, 2)).toBe(0);
    expect(await store.get('agents', 'a1')).toEqual(agent('a1'));
    await expect(store.pruneExpired('request_nonces', before, 0)).rejects.toThrow(/limit/);
    await expect(store.pruneExpired('request_nonces', before, 501)).rejects.toThrow(/limit/);
    expect(await store.auditEvents(10)).toEqual([]);
    await store.close();
  });

  it('queries without a filter, by a boolean, and leaves out documents without the order field', async () => {
    const store = await factory.open();
    await store.transact(async (tx) => {
      tx.set('agents', 'b-agent', agent('b-agent'));
      tx.set('agents', 'a-agent', { ...agent('a-agent'), disabled: true });
      tx.set('agents', 'c-agent', agent('c-agent'));
      tx.set('device_keys', 'd1', {
        ...key('dk_1', 'a1'),
        list_key: '2026-01-01T00:00:00.000Z|dk_1',
      });
      tx.set('device_keys', 'd2', key('dk_2', 'a1'));
    });
    const ids = (found: { id: string }[]) => found.map((f) => f.id);
    expect(ids(await store.query('agents', { orderBy: 'agent_id', limit: 10 }))).toEqual([
      'a-agent',
      'b-agent',
      'c-agent',
    ]);
    const enabled = { where: ['disabled', false], orderBy: 'agent_id', limit: 10 } as const;
    expect(ids(await store.query('agents', enabled))).toEqual(['b-agent', 'c-agent']);
    expect(ids(await store.query('agents', { ...enabled, after: 'b-agent' }))).toEqual(['c-agent']);
    expect(
      ids(
        await store.query('agents', { where: ['disabled', true], orderBy: 'agent_id', limit: 10 }),
      ),
    ).toEqual(['a-agent']);
    // Firestore (and SQLite, to match) leave out a document without the order field;
    // @firestore-emulator/server, which does not follow Firestore's ordering, keeps it.
    const listed = { where: ['agent_id', 'a1'], orderBy: 'list_key', limit: 10 } as const;
    if (factory.ordersById) expect(ids(await store.query('device_keys', listed))).toEqual(['d1']);
    await store.close();
  });

  it('tells when a collection is empty', async () => {
    const store = await factory.open();
    expect(await store.isEmpty('agents')).toBe(true);
    await store.transact(async (tx) => tx.set('agents', 'a-agent', agent('a-agent')));
    expect(await store.isEmpty('agents')).toBe(false);
    expect(await store.isEmpty('device_keys')).toBe(true);
    await store.close();
  });

  // Registered only where queries honour orderBy(documentId()) and startAfter:
  // @firestore-emulator/server answers in insertion order.
  if (factory.ordersById)
    it('scans a collection in id order, resuming after an id', async () => {
      const store = await factory.open();
      await store.transact(async (tx) => {
        for (const id of ['c-agent', 'a-agent', 'b-agent', 'd-agent'])
          tx.set('agents', id, agent(id));
      });
      const first = await store.scan('agents', null, 2);
      expect(first.map((f) => f.id)).toEqual(['a-agent', 'b-agent']);
      const rest = await store.scan('agents', 'b-agent', 10);
      expect(rest.map((f) => f.id)).toEqual(['c-agent', 'd-agent']);
      expect(rest[0]!.doc).toEqual(agent('c-agent'));
      expect(await store.scan('agents', 'd-agent', 10)).toEqual([]);
      await store.close();
    });

  it('commits writes and audit events together', async () => {
    const store = await factory.open();
    await store.transact(async (tx) => {
      tx.set('agents', 'a1', agent('a1'));
      tx.audit(event('a1'));
    });
    expect(await store.get('agents', 'a1')).not.toBeNull();
    expect(await store.auditEvents(10)).toEqual([event('a1')]);
    await store.close();
  });

  it('appends read audits, concurrent ones included, and resolves only once they are stored', async () => {
    const store = await factory.open();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => store.appendAudit([event(`agent-${i}`)])),
    );
    const stored = await store.auditEvents(100);
    expect(stored.map((e) => e.target.agent_id).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `agent-${i}`).sort(),
    );
    await store.close();
  });

  it('pages the audit log oldest first: after a key, within [since, until), with stable ids', async () => {
    const store = await factory.open();
    const at = (s: number) => `2026-01-01T00:00:0${s}.000Z`;
    const ev = (s: number, id: string): AuditEvent => ({ ...event(id), at: at(s) });
    await store.transact(async (tx) => {
      tx.audit(ev(1, 'e1'));
      tx.audit(ev(2, 'e2'));
    });
    await store.appendAudit([ev(3, 'e3'), ev(3, 'e4')]);
    await store.transact(async (tx) => tx.audit(ev(5, 'e5')));
    const all = await store.auditPage({ limit: 10 });
    expect(all.map((r) => r.event.target.agent_id).slice(0, 2)).toEqual(['e1', 'e2']);
    expect(all.map((r) => r.event)).toContainEqual(ev(5, 'e5'));
    expect(all.map((r) => r.event.at)).toEqual([at(1), at(2), at(3), at(3), at(5)]);
    expect(new Set(all.map((r) => r.event_id)).size).toBe(5);
    for (const r of all) expect(store.isAuditKey(r.key)).toBe(true);
    expect(store.isAuditKey('not a key')).toBe(false);
    // After a key: the rest, in the same order and with the same ids, page by page.
    const first = await store.auditPage({ limit: 2 });
    const rest = await store.auditPage({ after: first.at(-1)!.key, limit: 10 });
    expect([...first, ...rest]).toEqual(all);
    const window = await store.auditPage({ since: at(2), until: at(5), limit: 10 });
    expect(window.map((r) => r.event.target.agent_id).slice(0, 1)).toEqual(['e2']);
    expect(window.map((r) => r.event.at)).toEqual([at(2), at(3), at(3)]);
    const later = await store.auditPage({ after: all[3]!.key, since: at(2), limit: 10 });
    expect(later).toEqual([all[4]]);
    await expect(store.auditPage({ limit: 0 })).rejects.toThrow();
    // Nothing to give an order key to in a log written by this version.
    expect((await store.backfillAuditOrder(null, 10)).updated).toBe(0);
    await store.close();
  });

  it('commits nothing, audit included, when the transaction throws', async () => {
    const store = await factory.open();
    await expect(
      store.transact(async (tx) => {
        tx.set('agents', 'a1', agent('a1'));
        tx.audit(event('a1'));
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(await store.get('agents', 'a1')).toBeNull();
    expect(await store.auditEvents(10)).toEqual([]);
    await store.close();
  });

  it('reads inside a transaction see the state before its own buffered writes', async () => {
    const store = await factory.open();
    await store.transact(async (tx) => tx.set('agents', 'a1', agent('a1', 'old')));
    const seen = await store.transact(async (tx) => {
      tx.set('agents', 'a1', agent('a1', 'new'));
      return (await tx.get('agents', 'a1'))?.display_name;
    });
    expect(seen).toBe('old');
    expect((await store.get('agents', 'a1'))?.display_name).toBe('new');
    await store.close();
  });

  it('replaces and deletes documents', async () => {
    const store = await factory.open();
    await store.transact(async (tx) => tx.set('agents', 'a1', agent('a1', 'one')));
    await store.transact(async (tx) => tx.set('agents', 'a1', agent('a1', 'two')));
    expect((await store.get('agents', 'a1'))?.display_name).toBe('two');
    await store.transact(async (tx) => tx.delete('agents', 'a1'));
    expect(await store.get('agents', 'a1')).toBeNull();
    await store.close();
  });

  // Registered only where transactions isolate (see the file comment): not a skipped test.
  if (factory.isolates)
    it('serializes concurrent read-modify-write transactions', async () => {
      const store = await factory.open();
      await store.transact(async (tx) => tx.set('agents', 'counter', agent('counter', '0')));
      await Promise.all(
        Array.from({ length: 20 }, () =>
          store.transact(async (tx) => {
            const doc = await tx.get('agents', 'counter');
            const n = Number(doc?.display_name ?? '0');
            tx.set('agents', 'counter', agent('counter', String(n + 1)));
          }),
        ),
      );
      expect((await store.get('agents', 'counter'))?.display_name).toBe('20');
      await store.close();
    });
});

describe('firestore store specifics', () => {
  it('gives audit events written before order keys theirs, once, so the audit pages reach them', async () => {
    const name = `demo-backfill-${Date.now()}`;
    const db = getFirestore(initializeApp({ projectId: name }, name));
    const official = process.env['FIRESTORE_EMULATOR_HOST'];
    delete process.env['FIRESTORE_EMULATOR_HOST'];
    try {
      db.settings({ host: emulator!.host, ssl: false, universeDomain: FIRESTORE_UNIVERSE });
    } finally {
      if (official !== undefined) process.env['FIRESTORE_EMULATOR_HOST'] = official;
    }
    const store = firestoreStore(db);
    const old = { ...event('old'), at: '2025-06-01T00:00:00.000Z' };
    const ref = await db.collection(AUDIT_COLLECTION).add(old);
    await store.appendAudit([event('new')]);
    const first = await store.backfillAuditOrder(null, 500);
    expect(first).toEqual({ scanned: 2, updated: 1, next: null });
    expect(await store.backfillAuditOrder(null, 500)).toMatchObject({ updated: 0 });
    const page = await store.auditPage({ limit: 10 });
    expect(page.map((r) => r.event)).toEqual([old, event('new')]);
    expect(page[0]!.event_id).toBe(ref.id);
    expect(await store.auditEvents(10)).toContainEqual(old);
    await store.close();
  });
});

describe('sqlite store specifics', () => {
  it('rejects a read audit that cannot be stored, so the read can fail closed', async () => {
    const tmp = tempDir();
    const file = `${tmp.dir}/s.sqlite`;
    const store = openSqliteStore({ file });
    const admin = new Database(file);
    admin.exec(
      "CREATE TRIGGER no_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END;",
    );
    admin.close();
    await expect(store.appendAudit([event('a1')])).rejects.toThrow('audit down');
    await store.close();
    tmp.remove();
  });

  it('fails the change when the audit write fails (fail-closed audit)', async () => {
    const tmp = tempDir();
    const file = `${tmp.dir}/s.sqlite`;
    const store = openSqliteStore({ file });
    // A real failure inside SQLite: a trigger that aborts every audit insert.
    const admin = new Database(file);
    admin.exec(
      "CREATE TRIGGER no_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END;",
    );
    admin.close();
    await expect(
      store.transact(async (tx) => {
        tx.set('agents', 'a1', agent('a1'));
        tx.audit(event('a1'));
      }),
    ).rejects.toThrow('audit down');
    expect(await store.get('agents', 'a1')).toBeNull();
    await store.close();
    tmp.remove();
  });

  it('keeps committed data across reopen and creates the file with mode 0600', async () => {
    const tmp = tempDir();
    const file = `${tmp.dir}/s.sqlite`;
    const store = openSqliteStore({ file });
    await store.transact(async (tx) => tx.set('agents', 'a1', agent('a1')));
    await store.close();
    const { statSync } = await import('node:fs');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = openSqliteStore({ file });
    expect(await again.get('agents', 'a1')).toEqual(agent('a1'));
    await again.close();
    tmp.remove();
  });

  it('does not let reads outside a transaction see a transaction in flight', async () => {
    const tmp = tempDir();
    const store = openSqliteStore({ file: `${tmp.dir}/s.sqlite` });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inside!: () => void;
    const entered = new Promise<void>((r) => (inside = r));
    const pending = store.transact(async (tx) => {
      tx.set('agents', 'a1', agent('a1'));
      inside();
      await gate;
    });
    await entered;
    expect(await store.get('agents', 'a1')).toBeNull();
    release();
    await pending;
    expect(await store.get('agents', 'a1')).not.toBeNull();
    await store.close();
    tmp.remove();
  });
});
