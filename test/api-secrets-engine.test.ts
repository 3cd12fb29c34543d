/**
 * The rest of the KV engine over real HTTP: list, metadata, delete, undelete, destroy, pruning,
 * and what `cas` means after a delete.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let a: string;
beforeEach(async () => {
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b'])
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  a = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
});
afterEach(async () => {
  await svc.close();
});

const call = (path: string, body: object, key = a) => svc.post(path, body, svc.device(key));
async function putN(name: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++)
    expect((await call('/secrets/put', { name, value: `${name}-v${i}` })).status).toBe(200);
}

describe('/secrets/list and /secrets/metadata', () => {
  it('lists names and metadata, sorted, never values, only for the acting agent', async () => {
    await putN('zeta', 1);
    await putN('alpha', 2);
    const b = (await svc.post('/device/issue', { agent_id: 'agent-b' }, svc.bridge)).body
      .device_key;
    await call('/secrets/put', { name: 'b-only', value: 'b-secret' }, b);
    const res = await call('/secrets/list', {});
    expect(res.status).toBe(200);
    expect(res.body.secrets).toEqual([
      {
        name: 'alpha',
        current_version: 2,
        created_at: expect.any(String),
        updated_at: expect.any(String),
        brokered: false,
      },
      {
        name: 'zeta',
        current_version: 1,
        created_at: expect.any(String),
        updated_at: expect.any(String),
        brokered: false,
      },
    ]);
    expect(res.text).not.toContain('-v1');
    expect((await call('/secrets/list', {}, b)).body.secrets.map((s: any) => s.name)).toEqual([
      'b-only',
    ]);
  });

  it('shows each version state in metadata', async () => {
    await putN('k', 3);
    await call('/secrets/delete', { name: 'k', versions: [1] });
    await call('/secrets/destroy', { name: 'k', versions: [2] });
    const res = await call('/secrets/metadata', { name: 'k' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'k', current_version: 3, max_versions: 10 });
    expect(res.body.versions).toEqual([
      {
        version: 1,
        created_at: expect.any(String),
        deleted_at: expect.any(String),
        destroyed: false,
      },
      {
        version: 2,
        created_at: expect.any(String),
        deleted_at: expect.any(String),
        destroyed: true,
      },
      { version: 3, created_at: expect.any(String), deleted_at: null, destroyed: false },
    ]);
    expect((await call('/secrets/metadata', { name: 'nope' })).status).toBe(404);
  });

  it('needs an un-narrowed secrets/list scope for a token', async () => {
    await putN('k', 1);
    const narrow = mintTestToken({ sub: 'agent-a', scope: ['secrets/list:k'], nowMs: Date.now() });
    const wide = mintTestToken({ sub: 'agent-a', scope: ['secrets/list'], nowMs: Date.now() });
    expect((await svc.post('/secrets/list', {}, bearer(narrow))).status).toBe(403);
    expect((await svc.post('/secrets/list', {}, bearer(wide))).status).toBe(200);
  });
});

describe('delete, undelete, destroy', () => {
  it('soft-deletes the current version by default: it reads as 404 deleted until undeleted', async () => {
    await putN('k', 2);
    const del = await call('/secrets/delete', { name: 'k' });
    expect(del.body).toEqual({ name: 'k', versions: [2] });
    const gone = await call('/secrets/get', { name: 'k' });
    expect(gone.status).toBe(404);
    expect(gone.body.error.details).toEqual({ name: 'k', version: 2, reason: 'deleted' });
    expect(gone.text).not.toContain('k-v2');
    expect((await call('/secrets/get', { name: 'k', version: 1 })).body.value).toBe('k-v1');
    expect((await call('/secrets/undelete', { name: 'k' })).body).toEqual({
      name: 'k',
      versions: [2],
    });
    expect((await call('/secrets/get', { name: 'k' })).body.value).toBe('k-v2');
  });

  it('destroys for good: the ciphertext and wrapped key are gone and undelete is refused', async () => {
    await putN('k', 2);
    expect(await svc.store.get('secret_versions', 'agent-a:k:1')).not.toBeNull();
    expect((await call('/secrets/destroy', { name: 'k', versions: [1] })).status).toBe(200);
    expect(await svc.store.get('secret_versions', 'agent-a:k:1')).toBeNull();
    const res = await call('/secrets/get', { name: 'k', version: 1 });
    expect(res.status).toBe(404);
    expect(res.body.error.details.reason).toBe('destroyed');
    const undelete = await call('/secrets/undelete', { name: 'k', versions: [1] });
    expect(undelete.status).toBe(409);
    expect(undelete.body.error.code).toBe('failed_precondition');
    expect((await call('/secrets/get', { name: 'k' })).body.value).toBe('k-v2');
  });

  it('needs versions to destroy, and refuses unknown versions with 404 changing nothing', async () => {
    await putN('k', 2);
    expect((await call('/secrets/destroy', { name: 'k' })).status).toBe(400);
    const res = await call('/secrets/delete', { name: 'k', versions: [2, 7] });
    expect(res.status).toBe(404);
    expect(res.body.error.details).toMatchObject({ version: 7, reason: 'not_found' });
    expect((await call('/secrets/get', { name: 'k' })).body.value).toBe('k-v2');
    expect((await call('/secrets/delete', { name: 'missing' })).status).toBe(404);
  });

  it('is idempotent and audits only real changes, never values', async () => {
    await putN('k', 1);
    await call('/secrets/delete', { name: 'k' });
    await call('/secrets/delete', { name: 'k' });
    await call('/secrets/undelete', { name: 'k' });
    await call('/secrets/destroy', { name: 'k', versions: [1] });
    await call('/secrets/destroy', { name: 'k', versions: [1] });
    const actions = (await svc.store.auditEvents(100))
      .filter((e) => e.category === 'secrets')
      .map((e) => e.action);
    expect(actions.sort()).toEqual(
      ['secret.delete', 'secret.destroy', 'secret.put', 'secret.undelete'].sort(),
    );
    expect(JSON.stringify(await svc.store.auditEvents(100))).not.toContain('k-v1');
  });
});

describe('reads fail closed', () => {
  it('never returns a value whose read could not be audited', async () => {
    await putN('k', 1);
    const admin = new Database(join(svc.dataDir, 'identity.sqlite'));
    admin.exec(
      "CREATE TRIGGER no_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END;",
    );
    admin.close();
    const res = await call('/secrets/get', { name: 'k' });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
    expect(res.text).not.toContain('k-v1');
    const resolved = await call('/secrets/resolve', { refs: ['agentpack.secret://agent-a/k'] });
    expect(resolved.status).toBe(500);
    expect(resolved.text).not.toContain('k-v1');
  });
});

describe('cas after a delete (hashicorp/vault#15676)', () => {
  it('still counts deleted and destroyed versions: cas must name the highest version ever written', async () => {
    await putN('k', 2);
    await call('/secrets/delete', { name: 'k' }); // version 2 deleted
    const stale = await call('/secrets/put', { name: 'k', value: 'x', cas: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.details.current_version).toBe(2);
    expect((await call('/secrets/put', { name: 'k', value: 'k-v3', cas: 2 })).body.version).toBe(3);
  });

  it('refuses cas: 0 for a secret whose versions are all deleted or destroyed: it still exists', async () => {
    await putN('k', 1);
    await call('/secrets/destroy', { name: 'k', versions: [1] });
    const res = await call('/secrets/put', { name: 'k', value: 'again', cas: 0 });
    expect(res.status).toBe(409);
    expect(res.body.error.details.current_version).toBe(1);
    expect((await call('/secrets/put', { name: 'k', value: 'again', cas: 1 })).body.version).toBe(
      2,
    );
  });
});

describe('pruning beyond secrets.max_versions', () => {
  it('keeps the newest versions, oldest pruned first, their ciphertext gone', async () => {
    await svc.post('/settings/set', { key: 'secrets.max_versions', value: 3 }, svc.bridge);
    await putN('k', 5);
    const meta = await call('/secrets/metadata', { name: 'k' });
    expect(meta.body.versions.map((v: any) => v.version)).toEqual([3, 4, 5]);
    expect(meta.body.max_versions).toBe(3);
    expect(await svc.store.get('secret_versions', 'agent-a:k:1')).toBeNull();
    expect(await svc.store.get('secret_versions', 'agent-a:k:2')).toBeNull();
    const pruned = await call('/secrets/get', { name: 'k', version: 2 });
    expect(pruned.status).toBe(404);
    expect(pruned.body.error.details.reason).toBe('not_found');
    expect((await call('/secrets/get', { name: 'k', version: 3 })).body.value).toBe('k-v3');
    const prunes = (await svc.store.auditEvents(100)).filter((e) => e.action === 'secret.prune');
    expect(prunes.map((e) => e.target.version).sort()).toEqual([1, 2]);
  });

  it('prunes down at once when the setting is lowered', async () => {
    await putN('k', 4);
    await svc.post('/settings/set', { key: 'secrets.max_versions', value: 1 }, svc.bridge);
    await call('/secrets/put', { name: 'k', value: 'k-v5' });
    const meta = await call('/secrets/metadata', { name: 'k' });
    expect(meta.body.versions.map((v: any) => v.version)).toEqual([5]);
    for (const v of [1, 2, 3, 4])
      expect(await svc.store.get('secret_versions', `agent-a:k:${v}`)).toBeNull();
  });
});
