/**
 * What every core operation is given: the store and the clock (ports, never adapters), and the
 * one digest function of presented secrets.
 */
import type { Clock } from '../ports/clock.js';
import type { Store } from '../ports/store.js';
import type { Digester } from './digest.js';

export interface CoreDeps {
  store: Store;
  clock: Clock;
  digest: Digester;
}
