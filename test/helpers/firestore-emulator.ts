/**
 * `@firestore-emulator/server` on a free loopback port, and Firestore stores over it, each in
 * its own project so tests never share state. This emulator does not isolate transactions
 * (docs/operations.md, "Stores"): concurrency cases do not run on it.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { FirestoreServer } from '@firestore-emulator/server';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import {
  FIRESTORE_UNIVERSE,
  firestoreStore,
} from '../../functions/src/adapters/firestore-store.js';
import type { Store } from '../../functions/src/ports/store.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

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
      const db = getFirestore(app);
      // Pointed at this emulator explicitly, so FIRESTORE_EMULATOR_HOST stays free to name the
      // official emulator for the concurrency cases.
      db.settings({ host, ssl: false, universeDomain: FIRESTORE_UNIVERSE });
      return firestoreStore(db);
    },
    dump() {
      return JSON.stringify(server.state.toJSON());
    },
    async stop() {
      server.stop();
    },
  };
}
