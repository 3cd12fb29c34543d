/**
 * `@firestore-emulator/server` on a free loopback port, and Firestore stores over it, each in
 * its own project so tests never share state. This emulator does not isolate transactions
 * (docs/operations.md, "Stores"): concurrency cases do not run on it.
 */
import { randomUUID } from 'node:crypto';
import { FirestoreServer } from '@firestore-emulator/server';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import {
  FIRESTORE_UNIVERSE,
  firestoreStore,
} from '../../functions/src/adapters/firestore-store.js';
import type { Store } from '../../functions/src/ports/store.js';

import { freePort } from './free-port.js';

export { freePort };

export interface FirestoreEmulator {
  host: string;
  /** A store over a fresh, empty project of this emulator. */
  newStore(): Store;
  /** Everything the emulator stores, as JSON text (to look for anything stored in clear). */
  dump(): string;
  stop(): Promise<void>;
}

export async function startFirestoreEmulator(): Promise<FirestoreEmulator> {
  const server = new FirestoreServer();
  const port = await freePort();
  await server.start(port);
  const host = `127.0.0.1:${port}`;
  return {
    host,
    newStore() {
      const name = `demo-${randomUUID().slice(0, 12)}`;
      const app = initializeApp({ projectId: name }, name);
      // Pointed at this emulator explicitly, so FIRESTORE_EMULATOR_HOST stays free to name the
      // official emulator for the concurrency cases. The Firestore client reads that variable
      // when it is built and when it takes settings (and then ignores `host`): both happen here,
      // synchronously, with the variable out of the way.
      const official = process.env['FIRESTORE_EMULATOR_HOST'];
      delete process.env['FIRESTORE_EMULATOR_HOST'];
      try {
        const db = getFirestore(app);
        db.settings({ host, ssl: false, universeDomain: FIRESTORE_UNIVERSE });
        return firestoreStore(db);
      } finally {
        if (official !== undefined) process.env['FIRESTORE_EMULATOR_HOST'] = official;
      }
    },
    dump() {
      return JSON.stringify(server.state.toJSON());
    },
    async stop() {
      server.stop();
    },
  };
}

/**
 * A store in a fresh project of the official Firestore emulator named by
 * FIRESTORE_EMULATOR_HOST (started for the suite by test/global-setup.ts when the machine has
 * it): its own named app, so closing it ends nothing else.
 */
export function officialEmulatorStore(prefix: string): Store {
  const name = `${prefix}-${randomUUID().slice(0, 12)}`;
  const app = initializeApp({ projectId: `demo-${name}` }, name);
  const db = getFirestore(app);
  db.settings({ universeDomain: FIRESTORE_UNIVERSE });
  return firestoreStore(db);
}
