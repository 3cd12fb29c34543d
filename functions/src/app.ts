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
import type { Keyring } from './ports/keyring.js';
import type { Store } from './ports/store.js';
import { loadKekFile, localKeyring, parseKek } from './adapters/local-keyring.js';
import { loadPinnedKeys, publicJwks } from './tokens/pinned-keys.js';
import { createTokenVerifier } from './tokens/verify.js';

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

/** The secrets key-encryption key file inside the data dir (embedded mode). */
export function kekFile(dataDir: string): string {
  return join(dataDir, 'secrets-kek');
}

/**
 * The keyring for secrets: the KEK from the environment (Secret Manager on Cloud Functions), or
 * the key file in the data dir. The file is created only while the store holds no secret, so a
 * lost key file fails loudly instead of being silently replaced over existing data.
 */
export async function openKeyring(config: Config, store: Store): Promise<Keyring> {
  if (config.secretsKek !== null)
    return localKeyring(parseKek(config.secretsKek, 'AGENTPACK_SECRETS_KEK'));
  if (config.store !== 'sqlite') {
    throw new Error('AGENTPACK_SECRETS_KEK is required with the firestore store');
  }
  return localKeyring(loadKekFile(kekFile(config.dataDir), await store.isEmpty('secret_versions')));
}

/**
 * Builds the service. `store`, `clock` and `keyring` may be injected (tests); otherwise opened
 * here. The capability keys are parsed into key objects once, here, never per request.
 */
export async function createApp(options: {
  config: Config;
  logger: Logger;
  store?: Store;
  clock?: Clock;
  keyring?: Keyring;
}): Promise<App> {
  const { config } = options;
  const store = options.store ?? (await openStore(config));
  try {
    const keys = config.capabilityKeys === null ? null : loadPinnedKeys(config.capabilityKeys);
    const handler = createHandler({
      store,
      clock: options.clock ?? systemClock,
      logger: options.logger,
      bridgeKeys: config.bridgeKeys,
      tokens:
        keys === null
          ? null
          : createTokenVerifier({
              keys,
              issuer: config.issuer,
              audience: config.audience,
              maxTtlSeconds: config.capabilityMaxTtlSeconds,
            }),
      keyring: options.keyring ?? (await openKeyring(config, store)),
      issuer: config.issuer,
      audience: config.audience,
      jwks: keys === null ? { keys: [] } : publicJwks(keys),
    });
    return { handler, store, close: () => store.close() };
  } catch (error) {
    await store.close();
    throw error;
  }
}
