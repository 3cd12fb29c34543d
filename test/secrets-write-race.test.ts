/**
 * A write by an agent's own credential re-reads the agent inside its transaction: a disable
 * (or a retire) committed after the request authenticated wins, and nothing is written. The
 * store wrapper commits the disable at the exact moment between authentication and the write.
 */
import { afterAll, afterEach, expect, it } from 'vitest';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import type { Store } from '../functions/src/ports/store.js';
import { startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

let svc: TestService | undefined;
const tmp = tempDir();
afterEach(async () => {
  await svc?.close();
});
afterAll(() => tmp.remove());

/** A store that, once armed, runs `before` just ahead of the next transaction. */
function racing(store: Store): Store & { arm(before: () => Promise<void>): void } {
  let pending: (() => Promise<void>) | null = null;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'arm') return (before: () => Promise<void>) => void (pending = before);
      const value = Reflect.get(target, prop) as unknown;
      if (prop !== 'transact' || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (fn: Parameters<Store['transact']>[0]) => {
        const before = pending;
        pending = null;
        if (before !== null) await before();
        return target.transact(fn);
      };
    },
  }) as Store & { arm(before: () => Promise<void>): void };
}

it('a put and a delete by the agent lose against a disable committed after they authenticated', async () => {
  const base = openSqliteStore({ file: `${tmp.dir}/race.sqlite` });
  const store = racing(base);
  svc = await startTestService({ store });
  await svc.post('/agents/create', { display_name: 'a', agent_id: 'agent-a' }, svc.bridge);
  const dk = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  await svc.post('/secrets/put', { name: 'k', value: 'v-1' }, svc.device(dk));
  const disable = async () => {
    await base.transact(async (tx) => {
      const agent = (await tx.get('agents', 'agent-a'))!;
      tx.set('agents', 'agent-a', { ...agent, disabled: true });
    });
  };
  store.arm(disable);
  const put = await svc.post('/secrets/put', { name: 'k', value: 'v-2' }, svc.device(dk));
  expect(put.status).toBe(403);
  expect((await base.get('secrets', 'agent-a:k'))?.current_version).toBe(1);
  await base.transact(async (tx) => {
    const agent = (await tx.get('agents', 'agent-a'))!;
    tx.set('agents', 'agent-a', { ...agent, disabled: false });
  });
  store.arm(disable);
  const deleted = await svc.post('/secrets/delete', { name: 'k' }, svc.device(dk));
  expect(deleted.status).toBe(403);
  expect((await base.get('secrets', 'agent-a:k'))?.versions[0]?.deleted_at).toBeNull();
});
