/** A store wrapper for interruption tests: transactions start failing after a set number. */
import type { Store } from '../../functions/src/ports/store.js';

/** A store whose transactions fail once `arm(n)` has let n more of them commit. */
export function interruptible(
  store: Store,
): Store & { arm(commits: number): void; disarm(): void } {
  let left: number | null = null;
  const extra = {
    arm: (commits: number) => void (left = commits),
    disarm: () => void (left = null),
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop in extra) return extra[prop as keyof typeof extra];
      const value = Reflect.get(target, prop) as unknown;
      if (prop !== 'transact' || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (fn: Parameters<Store['transact']>[0]) => {
        if (left !== null && left <= 0) throw new Error('store unavailable (test interruption)');
        const result = await target.transact(fn);
        if (left !== null) left--;
        return result;
      };
    },
  }) as Store & typeof extra;
}
