/**
 * The stores an HTTP test runs on: the service's own SQLite store, the in-process Firestore
 * emulator (always), and Google's official emulator when FIRESTORE_EMULATOR_HOST names one (the
 * suite's global setup starts it where the machine has it). Call at the top of a test file: it
 * registers the in-process emulator's start and stop.
 */
import { afterAll, beforeAll } from 'vitest';
import type { Store } from '../../functions/src/ports/store.js';
import {
  officialEmulatorStore,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from './firestore-emulator.js';

export interface StoreBackend {
  name: string;
  kind: 'sqlite' | 'firestore';
  /** A fresh, empty store; undefined for SQLite: the test service opens its own. */
  store(): Store | undefined;
}

export function storeBackends(prefix: string): StoreBackend[] {
  let emulator: FirestoreEmulator | undefined;
  beforeAll(async () => {
    emulator = await startFirestoreEmulator();
  });
  afterAll(async () => {
    await emulator?.stop();
  });
  const backends: StoreBackend[] = [
    { name: 'sqlite', kind: 'sqlite', store: () => undefined },
    {
      name: 'firestore (in-process emulator)',
      kind: 'firestore',
      store: () => emulator!.newStore(),
    },
  ];
  if (process.env['FIRESTORE_EMULATOR_HOST'] !== undefined) {
    backends.push({
      name: 'firestore (official emulator)',
      kind: 'firestore',
      store: () => officialEmulatorStore(prefix),
    });
  }
  return backends;
}
