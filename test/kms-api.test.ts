/**
 * Secrets over real HTTP with the Cloud KMS keyring (the real client, real gRPC, the fake
 * KeyManagementService): values round-trip; with KMS unavailable `/secrets/put` and
 * `/secrets/get` answer 503 `unavailable` and nothing is half-written; after a rotation and a
 * rewrap, old and new versions still read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKmsKeyring } from '../functions/src/adapters/kms-keyring.js';
import { rewrapSecrets } from '../functions/src/core/rewrap.js';
import type { Keyring } from '../functions/src/ports/keyring.js';
import { startFakeKms, type FakeKms } from './helpers/fake-kms.js';
import { startTestService, type TestService } from './helpers/service.js';

let kms: FakeKms;
let keyring: Keyring & { close(): Promise<void> };
let svc: TestService;
let device: Record<string, string>;

beforeAll(async () => {
  kms = await startFakeKms();
  keyring = await openKmsKeyring({
    keyName: kms.keyName,
    apiEndpoint: '127.0.0.1',
    port: kms.port,
    insecure: true,
    timeoutMs: 500,
  });
  svc = await startTestService({ keyring });
  await svc.post('/agents/create', { display_name: 'KMS', agent_id: 'kms-agent' }, svc.bridge);
  const issued = await svc.post('/device/issue', { agent_id: 'kms-agent' }, svc.bridge);
  device = svc.device(issued.body.device_key);
});
afterAll(async () => {
  await svc?.close();
  await keyring?.close();
  await kms?.stop();
});

const put = (body: object) => svc.post('/secrets/put', body, device);
const get = (body: object) => svc.post('/secrets/get', body, device);

async function storedVersions() {
  return (await svc.store.scan('secret_versions', null, 1000)).map((f) => f.doc);
}

describe('secrets with Cloud KMS', () => {
  it('puts and gets a secret, its data key wrapped by the primary KMS key version', async () => {
    const written = await put({ name: 'openai_key', value: 'sk-first' });
    expect(written.status).toBe(200);
    expect(written.body).toMatchObject({ name: 'openai_key', version: 1 });
    const read = await get({ name: 'openai_key' });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ version: 1, value: 'sk-first' });
    const [stored] = await storedVersions();
    expect(stored!.kek_ref).toBe(kms.primary());
    expect(JSON.stringify(stored)).not.toContain('sk-first');
  });

  it('answers 503 unavailable while KMS is down, writes nothing, and recovers', async () => {
    const versionsBefore = await storedVersions();
    const auditBefore = (await svc.store.auditEvents(10_000)).length;
    kms.setUnavailable(true);
    try {
      const refused = await put({ name: 'openai_key', value: 'sk-second' });
      expect(refused.status).toBe(503);
      expect(refused.body).toEqual({
        error: { code: 'unavailable', message: 'the key service is unavailable' },
      });
      const unread = await get({ name: 'openai_key' });
      expect(unread.status).toBe(503);
      expect(unread.body.error.code).toBe('unavailable');
      expect(unread.text).not.toContain('sk-first');
    } finally {
      kms.setUnavailable(false);
    }
    // Nothing half-written: no new version document, no `secret.put` audit event.
    expect(await storedVersions()).toEqual(versionsBefore);
    const auditAfter = (await svc.store.auditEvents(10_000)).slice(auditBefore);
    expect(auditAfter.filter((e) => e.action === 'secret.put')).toEqual([]);
    // The current version is still the one before the outage.
    const read = await get({ name: 'openai_key' });
    expect(read.body).toMatchObject({ version: 1, value: 'sk-first' });
    expect((await put({ name: 'openai_key', value: 'sk-second', cas: 1 })).body.version).toBe(2);
    expect(svc.logs.join('\n')).not.toMatch(/sk-first|sk-second/);
  });

  it('reads old and new versions after a rotation and a rewrap', async () => {
    const oldRef = kms.primary();
    const newRef = kms.rotate();
    expect((await put({ name: 'openai_key', value: 'sk-third' })).body.version).toBe(3);
    const summary = await rewrapSecrets({
      store: svc.store,
      keyring,
      clock: { now: () => Date.parse('2026-02-01T00:00:00Z') },
    });
    expect(summary).toMatchObject({ scanned: 3, rewrapped: 2, skipped: 1 });
    const refs = (await storedVersions()).map((d) => d.kek_ref);
    expect(refs).toEqual([newRef, newRef, newRef]);
    expect(refs).not.toContain(oldRef);
    for (const [version, value] of [
      [1, 'sk-first'],
      [2, 'sk-second'],
      [3, 'sk-third'],
    ] as const) {
      expect((await get({ name: 'openai_key', version })).body.value).toBe(value);
    }
  });
});
