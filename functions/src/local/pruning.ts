/**
 * The local server's pruning (core/prune.ts): once at start, then every ten minutes, one run at
 * a time, never on the request path. The timer is unref'ed, so it never keeps the process
 * alive, and {@link Pruner.stop} ends it and waits for a run in flight before the store closes.
 * A run that deleted something logs the counts (`store.pruned`, info); a failed run logs a
 * warning and the next one tries again. On Cloud Functions Firestore's TTL policies do this.
 */
import { pruneExpired, type PruneCounts } from '../core/prune.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Store } from '../ports/store.js';

export const PRUNE_INTERVAL_MS = 10 * 60 * 1000;

export interface Pruner {
  /** The start-up run: its counts, or null if it failed (it never rejects). */
  readonly first: Promise<PruneCounts | null>;
  /** Resolves once no run is in flight. */
  settled(): Promise<void>;
  /** Stops the timer and resolves once no run is in flight. */
  stop(): Promise<void>;
}

export function startPruning(
  deps: { store: Store; clock: Clock },
  logger: Logger,
  intervalMs: number = PRUNE_INTERVAL_MS,
): Pruner {
  let last: Promise<PruneCounts | null> = Promise.resolve(null);
  let stopped = false;
  const once = (): Promise<PruneCounts | null> => {
    last = last.then(() =>
      stopped
        ? null
        : pruneExpired(deps).then(
            (counts) => {
              if (Object.values(counts).some((n) => n > 0)) logger.info('store.pruned', counts);
              return counts;
            },
            (error: unknown) => {
              logger.warn('store.prune_failed', {
                error: error instanceof Error ? `${error.name}: ${error.message}` : 'non-error',
              });
              return null;
            },
          ),
    );
    return last;
  };
  const first = once();
  const timer = setInterval(() => void once(), intervalMs);
  timer.unref();
  const settled = async () => {
    await last;
  };
  return {
    first,
    settled,
    stop() {
      stopped = true;
      clearInterval(timer);
      return settled();
    },
  };
}
