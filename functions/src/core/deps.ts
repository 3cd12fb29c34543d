/** What every core operation is given: the store and the clock (ports, never adapters). */
import type { Clock } from '../ports/clock.js';
import type { Store } from '../ports/store.js';

export interface CoreDeps {
  store: Store;
  clock: Clock;
}
