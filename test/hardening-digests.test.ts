/**
 * Digests are keyed (hardening finding 5): device keys and enrollment codes are looked up by
 * HMAC under a digest key the store never holds, so a row written into the store by someone
 * without that key authenticates nothing; a store from before keyed digests is migrated
 * without knowing any key, and refuses its old rows until then.
 */
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateDeviceKey, generateEnrollmentCode } from '@agentpack-identity/protocol';
import { digestKeyFile } from '../functions/src/app.js';
import { legacyDigest } from '../functions/src/core/digest.js';
import { migrateDigests, PlainRowsRefused } from '../functions/src/core/digest-migration.js';
import { parseKey32 } from '../functions/src/config/key-file.js';
import type { DeviceKeyDoc } from '../functions/src/ports/store.js';
import { openSealed, generateDeviceKeys } from '@agentpack-identity/protocol';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { sqliteFile } from '../functions/src/app.js';
import { createDigester } from '../functions/src/core/digest.js';
import { killLiveProcesses, runNode } from './helpers/cli-process.js';
import { startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

let svc: TestService;
beforeEach(async () => {
  svc = await startTestService();
  await svc.post('/agents/create', { display_name: 'a', agent_id: 'agent-a' }, svc.bridge);
  await svc.post('/secrets/put', { name: 'k', value: 'v-1' }, svc.device(await issue()));
});
afterEach(async () => {
  await svc.close();
  await killLiveProcesses();
});

async function issue(): Promise<string> {
  return (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
}

const row = (keyId: string): DeviceKeyDoc => ({
  key_id: keyId,
  agent_id: 'agent-a',
  label: null,
  created_at: '2026-01-01T00:00:00.000Z',
  expires_at: null,
  revoked_at: null,
});

const read = (key: string) => svc.post('/secrets/get', { name: 'k' }, svc.device(key));

describe('keyed digests', () => {
  it('a device key row written into the store without the digest key authenticates nothing', async () => {
    const madeUp = generateDeviceKey();
    await svc.store.transact(async (tx) => {
      // Where a plain SHA-256 would look it up, and marked as if the service had written it.
      tx.set('device_keys', legacyDigest('device_key', madeUp), {
        ...row('dk_forged000000001'),
        digest: 'keyed',
      });
    });
    const res = await read(madeUp);
    expect(res.status).toBe(401);
    expect(res.text).not.toContain('v-1');
  });

  it('stores keys under the keyed digest only, with the key in a private file of the data dir', async () => {
    const key = await issue();
    expect(await svc.store.get('device_keys', legacyDigest('device_key', key))).toBeNull();
    expect(await svc.store.get('device_keys', svc.digest('device_key', key))).toMatchObject({
      agent_id: 'agent-a',
      digest: 'keyed',
    });
    const file = digestKeyFile(svc.dataDir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const digestKey = parseKey32(readFileSync(file, 'utf8'), file, 'digest key');
    expect(JSON.stringify(await svc.store.auditEvents(100))).not.toContain(
      digestKey.toString('base64url'),
    );
    expect(svc.logs.join('\n')).not.toContain(digestKey.toString('base64url'));
  });

  it('never moves a plain row into a store this service already wrote keyed rows to', async () => {
    const forged = generateDeviceKey();
    await svc.store.transact(async (tx) => {
      tx.set('device_keys', legacyDigest('device_key', forged), row('dk_forged000000002'));
    });
    const file = digestKeyFile(svc.dataDir);
    const digestKey = parseKey32(readFileSync(file, 'utf8'), file, 'digest key');
    await expect(
      migrateDigests({ store: svc.store, digestKey, clock: { now: () => Date.now() } }),
    ).rejects.toThrow(PlainRowsRefused);
    expect((await read(forged)).status).toBe(401);
    expect(await svc.store.get('device_keys', legacyDigest('device_key', forged))).not.toBeNull();
    expect((await svc.store.auditEvents(1000)).some((e) => e.action === 'digest.migrate')).toBe(
      false,
    );
  });

  it('migrates rows written before keyed digests, without their keys, once', async () => {
    const oldKey = generateDeviceKey();
    const oldCode = generateEnrollmentCode();
    const now = Date.now();
    // A store from before keyed digests: its only rows are plain ones (the fixture's keyed key
    // goes, as if the service had never run under keyed digests).
    const keyed = await svc.store.find('device_keys', 'agent_id', 'agent-a', 10);
    await svc.store.transact(async (tx) => {
      for (const { id } of keyed) tx.delete('device_keys', id);
      tx.set('device_keys', legacyDigest('device_key', oldKey), row('dk_legacy000000001'));
      tx.set('device_enrollments', legacyDigest('enrollment_code', oldCode), {
        enrollment_id: 'en_legacy0000000000000001',
        agent_id: 'agent-a',
        expected_fingerprint: null,
        replaces_key_id: null,
        label: null,
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + 600_000).toISOString(),
        used_at: null,
        key_id: null,
      });
    });
    // Before the migration an old row is refused, like an unknown key.
    expect((await read(oldKey)).status).toBe(401);
    const file = digestKeyFile(svc.dataDir);
    const digestKey = parseKey32(readFileSync(file, 'utf8'), file, 'digest key');
    const first = await migrateDigests({ store: svc.store, digestKey, clock: { now: () => now } });
    expect(first.moved).toBe(2);
    expect((await read(oldKey)).status).toBe(200);
    expect(await svc.store.get('device_keys', legacyDigest('device_key', oldKey))).toBeNull();
    const again = await migrateDigests({ store: svc.store, digestKey, clock: { now: () => now } });
    expect(again).toMatchObject({ moved: 0 });
    expect(again.scanned).toBe(first.scanned);
    const moves = (await svc.store.auditEvents(1000)).filter((e) => e.action === 'digest.migrate');
    expect(moves.map((e) => e.details?.['collection']).sort()).toEqual([
      'device_enrollments',
      'device_keys',
    ]);

    // The migrated enrollment code still enrolls a device.
    const keys = generateDeviceKeys();
    const enrolled = await svc.post('/device/enroll', {
      code: oldCode,
      sealing_public_key: Buffer.from(keys.sealing.publicKey).toString('base64url'),
      signing_public_key: Buffer.from(keys.signing.publicKey).toString('base64url'),
    });
    expect(enrolled.status).toBe(201);
    const opened = openSealed(
      Buffer.from(enrolled.body.sealed_device_key, 'base64url'),
      keys.sealing.publicKey,
      keys.sealing.privateKey,
    );
    expect(opened).not.toBeNull();
  });

  it('refuses to start over a store with device keys when the digest key file is gone', async () => {
    unlinkSync(digestKeyFile(svc.dataDir));
    const { createApp } = await import('../functions/src/app.js');
    const { loadConfig } = await import('../functions/src/config/config.js');
    const { capturingLogger } = await import('./helpers/logs.js');
    const config = loadConfig(
      { AGENTPACK_DATA_DIR: svc.dataDir, AGENTPACK_BRIDGE_KEYS: 'x'.repeat(40) },
      { store: 'sqlite' },
    );
    await expect(createApp({ config, logger: capturingLogger().logger })).rejects.toThrow(
      /digest-key is missing: the store holds device keys/,
    );
  });
});

describe('agentpack-identity maintenance migrate-digests', () => {
  it('moves a legacy store to keyed digests as a process, creating the key file, once', async () => {
    const tmp = tempDir();
    try {
      const legacyKey = generateDeviceKey();
      const store = openSqliteStore({ file: sqliteFile(tmp.dir) });
      await store.transact(async (tx) => {
        tx.set('device_keys', legacyDigest('device_key', legacyKey), row('dk_legacy000000002'));
      });
      await store.close();
      const env = { AGENTPACK_DATA_DIR: tmp.dir };
      const first = await runNode(['maintenance', 'migrate-digests'], env);
      expect(first.stderr).toBe('');
      expect(JSON.parse(first.stdout)).toEqual({
        scanned: 1,
        moved: 1,
        list_keys: 1,
        audit_order_keys: 0,
      });
      expect(first.stdout).not.toContain(legacyKey);
      const file = digestKeyFile(tmp.dir);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const digest = createDigester(parseKey32(readFileSync(file, 'utf8'), file, 'digest key'));
      const reopened = openSqliteStore({ file: sqliteFile(tmp.dir) });
      expect(await reopened.get('device_keys', digest('device_key', legacyKey))).toMatchObject({
        key_id: 'dk_legacy000000002',
        digest: 'keyed',
      });
      await reopened.close();
      const again = await runNode(['maintenance', 'migrate-digests', '--data-dir', tmp.dir], {});
      expect(JSON.parse(again.stdout)).toEqual({
        scanned: 1,
        moved: 0,
        list_keys: 0,
        audit_order_keys: 0,
      });
      const pruned = await runNode(['maintenance', 'prune'], env);
      expect(Object.keys(JSON.parse(pruned.stdout)).sort()).toEqual([
        'device_enrollments',
        'request_nonces',
        'runs',
      ]);
      // Over moved rows a missing key file is a lost key: refused, and no new key is made.
      unlinkSync(file);
      const lost = await runNode(['maintenance', 'migrate-digests'], env);
      expect(lost.code).toBe(1);
      expect(lost.stderr).toMatch(/digest-key is missing/);
      expect(() => statSync(file)).toThrow();
      const missing = await runNode(
        ['maintenance', 'migrate-digests', '--data-dir', `${tmp.dir}/none`],
        {},
      );
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no store in/);
    } finally {
      tmp.remove();
    }
  });
});
