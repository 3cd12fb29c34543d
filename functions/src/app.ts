/**
 * The composition root: configuration + store + logger + clock → the request handler. Both the
 * Cloud Function and the local server build the service here, so they differ only in their
 * transport.
 */
import { join } from 'node:path';
import type { Config } from './config/config.js';
import { createHandler, type Handler } from './http/handler.js';
import { systemClock, type Clock } from './ports/clock.js';
import type { Logger } from './ports/logger.js';
import type { Store } from './ports/store.js';

export interface App {
  handler: Handler;
  store: Store;
  close(): Promise<void>;
}

/** The embedded store's file inside the data dir. */
export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'identity.sqlite');
}

/** Opens the configured store. Adapters load lazily: each mode imports only its own driver. */
export async function openStore(config: Config): Promise<Store> {
  if (config.store === 'firestore') {
    const { openFirestoreStore } = await import('./adapters/firestore-store.js');
    return openFirestoreStore();
  }
  const { openSqliteStore } = await import('./adapters/sqlite-store.js');
  return openSqliteStore({ file: sqliteFile(config.dataDir) });
}

/** Builds the service. `store` and `clock` may be injected (tests); otherwise opened here. */
export async function createApp(options: {
  config: Config;
  logger: Logger;
  store?: Store;
  clock?: Clock;
}): Promise<App> {
  const store = options.store ?? (await openStore(options.config));
  const handler = createHandler({
    store,
    clock: options.clock ?? systemClock,
    logger: options.logger,
    bridgeKeys: options.config.bridgeKeys,
  });
  return { handler, store, close: () => store.close() };
}
