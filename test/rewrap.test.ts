/**
 * `rewrapSecrets` on the real SQLite store with the Cloud KMS keyring (real client, real gRPC,
 * the fake KeyManagementService): after a rotation every version moves to the new primary with
 * its value untouched and still readable, audited; a second run does nothing; a run resumes
 * from `after`, stops cleanly when KMS goes away, and never writes over a version that changed
 * while it worked.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openKmsKeyring } from '../functions/src/adapters/kms-keyring.js';
import { localKeyring } from '../functions/src/adapters/local-keyring.js';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { openValue, recordAad, sealValue } from '../functions/src/core/envelope.js';
import { ApiError } from '../functions/src/core/errors.js';
import { RewrapStopped, rewrapSecrets } from '../functions/src/core/rewrap.js';
import type { Keyring } from '../functions/src/ports/keyring.js';
import type { SecretVersionDoc, Store } from '../functions/src/ports/store.js';
import { manualClock } from './helpers/clock.js';
import { startFakeKms, type FakeKms } from './helpers/fake-kms.js';
import { tempDir } from './helpers/temp-dir.js';

let kms: FakeKms;
let keyring: Keyring & { close(): Promise<void> };
let store: Store;
let tmp: ReturnType<typeof tempDir>;
const clock = manualClock(Date.parse('2026-03-01T12:00:00.000Z'));

beforeAll(async () => {
  kms = await startFakeKms();
  keyring = await openKmsKeyring({
    keyName: kms.keyName,
    apiEndpoint: '127.0.0.1',
    port: kms.port,
    insecure: true,
    timeoutMs: 500,
  });
});
afterAll(async () => {
  await keyring?.close();
  await kms?.stop();
});
beforeEach(() => {
  tmp = tempDir('agentpack-rewrap-');
  store = openSqliteStore({ file: join(tmp.dir, 'identity.sqlite') });
});
afterEach(async () => {
  kms.reset();
  await store.close();
  tmp.remove();
});

const SECRETS = [
  ['agent-a', 'openai_key', 1, 'sk-a-1'],
  ['agent-a', 'openai_key', 2, 'sk-a-2'],
  ['agent-a', 'github_token', 1, 'ghp-a'],
  ['agent-b', 'openai_key', 1, 'sk-b-1'],
  ['agent-b', 'db.password', 1, 'hunter2'],
] as const;

const idOf = (agent: string, name: string, version: number) => `${agent}:${name}:${version}`;
const IDS = SECRETS.map(([a, n, v]) => idOf(a, n, v)).sort();

/** Writes the versions as the secrets engine does: sealed under the keyring, then stored. */
async function writeSecrets(ring: Keyring = keyring): Promise<void> {
  for (const [agent, name, version, value] of SECRETS) {
    const sealed = await sealValue(ring, value, recordAad(agent, name, version));
    await store.transact(async (tx) => {
      tx.set('secret_versions', idOf(agent, name, version), {
        agent_id: agent,
        name,
        version,
        created_at: '2026-01-01T00:00:00.000Z',
        ...sealed,
      });
    });
  }
}

async function versions(): Promise<Map<string, SecretVersionDoc>> {
  return new Map((await store.scan('secret_versions', null, 1000)).map((f) => [f.id, f.doc]));
}

async function expectAllReadable(ring: Keyring = keyring): Promise<void> {
  const docs = await versions();
  for (const [agent, name, version, value] of SECRETS) {
    const doc = docs.get(idOf(agent, name, version))!;
    expect(await openValue(ring, doc, recordAad(agent, name, version))).toBe(value);
  }
}

const rewrapEvents = async () =>
  (await store.auditEvents(10_000)).filter((e) => e.action === 'secret.rewrap');

describe('rewrapSecrets', () => {
  it('moves every version to the new primary after a rotation, values untouched, audited', async () => {
    await writeSecrets();
    const oldRef = kms.primary();
    const before = await versions();
    const newRef = kms.rotate();

    const summary = await rewrapSecrets({ store, keyring, clock });
    expect(summary).toEqual({ scanned: 5, rewrapped: 5, skipped: 0, last_id: IDS.at(-1) });

    const after = await versions();
    for (const [id, doc] of after) {
      const old = before.get(id)!;
      expect(doc.kek_ref).toBe(newRef);
      expect(doc.wrapped_key).not.toBe(old.wrapped_key);
      // Only the wrapping changed.
      expect({ ...doc, wrapped_key: '', kek_ref: '' }).toEqual({
        ...old,
        wrapped_key: '',
        kek_ref: '',
      });
    }
    await expectAllReadable();

    const events = await rewrapEvents();
    expect(events).toHaveLength(5);
    expect(
      events.map((e) => `${e.target.agent_id}:${e.target.secret}:${e.target.version}`).sort(),
    ).toEqual(IDS);
    for (const event of events) {
      expect(event).toMatchObject({
        category: 'secrets',
        actor: { kind: 'maintenance' },
        at: '2026-03-01T12:00:00.000Z',
        details: { from: oldRef, to: newRef },
      });
    }
    const auditText = JSON.stringify(events);
    for (const doc of [...before.values(), ...after.values()]) {
      expect(auditText).not.toContain(doc.wrapped_key);
    }
    for (const [, , , value] of SECRETS) expect(auditText).not.toContain(value);
  });

  it('is safe to run twice: the second run rewraps nothing and calls KMS only for the primary', async () => {
    await writeSecrets();
    kms.rotate();
    await rewrapSecrets({ store, keyring, clock });
    const snapshot = await versions();
    const callsBefore = kms.calls.length;

    const again = await rewrapSecrets({ store, keyring, clock, batchSize: 2 });
    expect(again).toEqual({ scanned: 5, rewrapped: 0, skipped: 5, last_id: IDS.at(-1) });
    expect(await versions()).toEqual(snapshot);
    expect(new Set(kms.calls.slice(callsBefore))).toEqual(new Set(['GetCryptoKey']));
    expect(await rewrapEvents()).toHaveLength(5);
  });

  it('resumes after a given id, and a run from the start then does only what is left', async () => {
    await writeSecrets();
    const newRef = kms.rotate();
    const later = await rewrapSecrets({ store, keyring, clock, batchSize: 2, after: IDS[1]! });
    expect(later).toEqual({ scanned: 3, rewrapped: 3, skipped: 0, last_id: IDS[4] });
    const docs = await versions();
    expect(IDS.map((id) => docs.get(id)!.kek_ref === newRef)).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    const rest = await rewrapSecrets({ store, keyring, clock, batchSize: 2 });
    expect(rest).toEqual({ scanned: 5, rewrapped: 2, skipped: 3, last_id: IDS[4] });
    await expectAllReadable();
    // Nothing after the last id: a finished run resumed is a no-op.
    expect(await rewrapSecrets({ store, keyring, clock, after: IDS[4]! })).toEqual({
      scanned: 0,
      rewrapped: 0,
      skipped: 0,
      last_id: IDS[4],
    });
  });

  it('stops when KMS becomes unavailable, reporting how far it got, and resumes from there', async () => {
    await writeSecrets();
    const newRef = kms.rotate();
    let unwraps = 0;
    // KMS goes down just as the third version is unwrapped.
    const flaky: Keyring = {
      primaryRef: () => keyring.primaryRef(),
      wrap: (key, aad) => keyring.wrap(key, aad),
      unwrap: (wrapped, ref, aad) => {
        if (++unwraps === 3) kms.setUnavailable(true);
        return keyring.unwrap(wrapped, ref, aad);
      },
    };
    let stopped: unknown;
    try {
      await rewrapSecrets({ store, keyring: flaky, clock, batchSize: 2 });
    } catch (error) {
      stopped = error;
    }
    expect(stopped).toBeInstanceOf(RewrapStopped);
    const stop = stopped as RewrapStopped;
    expect(stop.summary).toEqual({ scanned: 2, rewrapped: 2, skipped: 0, last_id: IDS[1] });
    expect(stop.failedId).toBe(IDS[2]);
    expect((stop.reason as ApiError).code).toBe('unavailable');
    expect(stop.message).toBe(`rewrap stopped at ${IDS[2]}: the key service is unavailable`);
    expect([...(await versions()).values()].filter((d) => d.kek_ref === newRef)).toHaveLength(2);

    kms.setUnavailable(false);
    const resumed = await rewrapSecrets({ store, keyring, clock, after: stop.summary.last_id });
    expect(resumed).toEqual({ scanned: 3, rewrapped: 3, skipped: 0, last_id: IDS[4] });
    expect([...(await versions()).values()].every((d) => d.kek_ref === newRef)).toBe(true);
    await expectAllReadable();
  });

  it('never writes over a version destroyed or rewrapped while it was being rewrapped', async () => {
    await writeSecrets();
    kms.rotate();
    const [destroyed, replaced] = [IDS[0]!, IDS[3]!];
    const replacement = 'replaced-by-someone-else';
    let wraps = 0;
    // Between the KMS calls and the transaction, another writer changes two versions.
    const racing: Keyring = {
      primaryRef: () => keyring.primaryRef(),
      unwrap: (wrapped, ref, aad) => keyring.unwrap(wrapped, ref, aad),
      wrap: async (key, aad) => {
        const result = await keyring.wrap(key, aad);
        wraps++;
        if (wraps === 1) {
          await store.transact(async (tx) => tx.delete('secret_versions', destroyed));
        }
        if (wraps === 4) {
          await store.transact(async (tx) => {
            const doc = (await tx.get('secret_versions', replaced))!;
            tx.set('secret_versions', replaced, { ...doc, wrapped_key: replacement });
          });
        }
        return result;
      },
    };
    const summary = await rewrapSecrets({ store, keyring: racing, clock });
    expect(summary).toEqual({ scanned: 5, rewrapped: 3, skipped: 2, last_id: IDS[4] });
    const docs = await versions();
    expect(docs.has(destroyed)).toBe(false);
    expect(docs.get(replaced)!.wrapped_key).toBe(replacement);
    expect(
      (await rewrapEvents())
        .map((e) => e.target.agent_id + ':' + e.target.secret + ':' + e.target.version)
        .sort(),
    ).toEqual([IDS[1], IDS[2], IDS[4]]);
  });

  it('stops on a data key that does not unwrap for its record, changing nothing of it', async () => {
    await writeSecrets();
    kms.rotate();
    // A version moved to another record: its AAD no longer matches what the key was wrapped with.
    const docs = await versions();
    const moved = { ...docs.get(IDS[0]!)!, name: 'stolen' };
    await store.transact(async (tx) => tx.set('secret_versions', IDS[0]!, moved));
    let stopped: unknown;
    try {
      await rewrapSecrets({ store, keyring, clock });
    } catch (error) {
      stopped = error;
    }
    expect(stopped).toBeInstanceOf(RewrapStopped);
    expect((stopped as RewrapStopped).summary).toEqual({
      scanned: 0,
      rewrapped: 0,
      skipped: 0,
      last_id: null,
    });
    expect((stopped as RewrapStopped).reason).not.toBeInstanceOf(ApiError);
    expect((await versions()).get(IDS[0]!)).toEqual(moved);
    expect(await rewrapEvents()).toEqual([]);
  });

  it('with the local keyring, finds everything already under its key', async () => {
    const local = localKeyring(Buffer.alloc(32, 7));
    await writeSecrets(local);
    expect(await rewrapSecrets({ store, keyring: local, clock })).toEqual({
      scanned: 5,
      rewrapped: 0,
      skipped: 5,
      last_id: IDS.at(-1),
    });
    await expectAllReadable(local);
  });

  it('refuses a batch size outside 1..1000', async () => {
    for (const batchSize of [0, -1, 1.5, 1001]) {
      await expect(rewrapSecrets({ store, keyring, clock, batchSize })).rejects.toThrow(
        /batch size must be a whole number from 1 to 1000/,
      );
    }
  });
});
