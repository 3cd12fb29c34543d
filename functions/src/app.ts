/**
 * The composition root: configuration + store + logger + clock → the request handler. Both the
 * Cloud Function and the local server build the service here, so they differ only in their
 * transport.
 */
import { join } from 'node:path';
import type { Config, StorageConfig } from './config/config.js';
import { createHandler, type Handler } from './http/handler.js';
import { systemClock, type Clock } from './ports/clock.js';
import type { Logger } from './ports/logger.js';
import type { Keyring } from './ports/keyring.js';
import type { Store } from './ports/store.js';
import { loadKekFile, localKeyring, parseKek } from './adapters/local-keyring.js';
import { loadKeyFile, parseKey32 } from './config/key-file.js';
import { createDigester, type Digester } from './core/digest.js';
import { loadPinnedKeys, publicJwks } from './tokens/pinned-keys.js';
import { createTokenVerifier } from './tokens/verify.js';
import type { TokenSigner } from './ports/token-signer.js';
import { loadSigningKeyFile, localSigner, parseSigningKeys } from './adapters/local-signer.js';
import { createIssuerKeys, type FetchJson } from './core/issuer-keys.js';
import { fetchJson as httpsFetchJson } from './adapters/https-fetch.js';

export interface App {
  handler: Handler;
  store: Store;
  /** The digest of presented secrets this service stores and looks them up by. */
  digest: Digester;
  close(): Promise<void>;
}

/** The embedded store's file inside the data dir. */
export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'identity.sqlite');
}

/** Opens the configured store. Adapters load lazily: each mode imports only its own driver. */
export async function openStore(config: StorageConfig): Promise<Store> {
  if (config.store === 'firestore') {
    const { openFirestoreStore } = await import('./adapters/firestore-store.js');
    return openFirestoreStore();
  }
  const { openSqliteStore } = await import('./adapters/sqlite-store.js');
  return openSqliteStore({
    file: sqliteFile(config.dataDir),
    synchronous: config.sqliteSynchronous,
  });
}

/** The secrets key-encryption key file inside the data dir (embedded mode). */
export function kekFile(dataDir: string): string {
  return join(dataDir, 'secrets-kek');
}

/** A keyring opened from the configuration; `close()` releases its connection (if any). */
export interface OpenedKeyring extends Keyring {
  close(): Promise<void>;
}

/**
 * The keyring for secrets: Cloud KMS when `AGENTPACK_KMS_KEY` is set (production), else the KEK
 * from the environment (emulators), else the key file in the data dir. The file is created only
 * while the store holds no secret, so a lost key file fails loudly instead of being silently
 * replaced over existing data. The KMS client is imported only in the KMS case (cold start).
 */
export async function openKeyring(config: StorageConfig, store: Store): Promise<OpenedKeyring> {
  if (config.kms !== null) {
    const { openKmsKeyring } = await import('./adapters/kms-keyring.js');
    const { keyName, endpoint, insecure } = config.kms;
    return openKmsKeyring({
      keyName,
      ...(endpoint === null ? {} : { apiEndpoint: endpoint.host, port: endpoint.port }),
      insecure,
    });
  }
  const local = (kek: Buffer): OpenedKeyring => ({ ...localKeyring(kek), close: async () => {} });
  if (config.secretsKek !== null)
    return local(parseKek(config.secretsKek, 'AGENTPACK_SECRETS_KEK'));
  if (config.store !== 'sqlite') {
    throw new Error(
      'AGENTPACK_KMS_KEY (or AGENTPACK_SECRETS_KEK) is required with the firestore store',
    );
  }
  return local(loadKekFile(kekFile(config.dataDir), await store.isEmpty('secret_versions')));
}

/** The digest key file inside the data dir (embedded mode). */
export function digestKeyFile(dataDir: string): string {
  return join(dataDir, 'digest-key');
}

/**
 * The digest key of presented secrets: `AGENTPACK_DIGEST_KEY` (Secret Manager on Cloud
 * Functions; required with the firestore store), else the key file in the data dir, created
 * only while the store holds no device key and no enrollment (a lost file must fail loudly:
 * every stored key would silently stop working). With `mayCreate` (the digest migration of a
 * store from before keyed digests) it is created over existing rows.
 */
export async function openDigestKey(
  config: StorageConfig,
  store: Store,
  mayCreate = false,
): Promise<Buffer> {
  if (config.digestKey !== null) {
    return parseKey32(config.digestKey, 'AGENTPACK_DIGEST_KEY', 'digest key');
  }
  if (config.store !== 'sqlite') {
    throw new Error('AGENTPACK_DIGEST_KEY is required with the firestore store');
  }
  const empty = (await store.isEmpty('device_keys')) && (await store.isEmpty('device_enrollments'));
  return loadKeyFile(digestKeyFile(config.dataDir), {
    what: 'digest key',
    mayCreate: mayCreate || empty,
    missing:
      'the store holds device keys: restore the file (for a store written before keyed digests, run `agentpack-identity maintenance migrate-digests`)',
  });
}

/** The online signing key file inside the data dir (embedded mode). */
export function signingKeyFile(dataDir: string): string {
  return join(dataDir, 'run-token-signing-key.jwks');
}

/**
 * The online signing key of run tokens: the Cloud KMS CryptoKeyVersion when
 * `AGENTPACK_KMS_SIGNING_KEY` is set (production; the client is imported only then), else the
 * keys of `AGENTPACK_SIGNING_KEY`, else the key file of the data dir (created on first start).
 */
export async function openSigner(config: Config, logger: Logger): Promise<TokenSigner> {
  const signing = config.signing;
  switch (signing.kind) {
    case 'kms': {
      const { openKmsSigner } = await import('./adapters/kms-signer.js');
      return openKmsSigner({
        versionName: signing.versionName,
        ...(signing.endpoint === null
          ? {}
          : { apiEndpoint: signing.endpoint.host, port: signing.endpoint.port }),
        insecure: signing.insecure,
        // A failed refresh keeps the keys already published; operators hear of it here.
        onRefreshError: (error) =>
          logger.warn('signing_keys.refresh_failed', {
            error: error instanceof Error ? error.message : 'unknown error',
          }),
      });
    }
    case 'env':
      return localSigner(parseSigningKeys(signing.keys, 'AGENTPACK_SIGNING_KEY'));
    case 'file':
      return localSigner(loadSigningKeyFile(signingKeyFile(config.dataDir)));
  }
}

/**
 * Builds the service. `store`, `clock`, `keyring`, `signer` and the issuers' `fetchJson` (and
 * the `issuerCa` it trusts) may be injected (tests); otherwise opened here. The capability keys are parsed into key objects once, here, never per request.
 */
export async function createApp(options: {
  config: Config;
  logger: Logger;
  store?: Store;
  clock?: Clock;
  keyring?: Keyring;
  signer?: TokenSigner;
  fetchJson?: FetchJson;
  issuerCa?: string;
}): Promise<App> {
  const { config } = options;
  const store = options.store ?? (await openStore(config));
  const clock = options.clock ?? systemClock;
  let opened: OpenedKeyring | null = null;
  let openedSigner: TokenSigner | null = null;
  try {
    const keys = config.capabilityKeys === null ? null : loadPinnedKeys(config.capabilityKeys);
    const digest = createDigester(await openDigestKey(config, store));
    const keyring = options.keyring ?? (opened = await openKeyring(config, store));
    const signer = options.signer ?? (openedSigner = await openSigner(config, options.logger));
    const handler = createHandler({
      store,
      digest,
      clock,
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
      keyring,
      issuer: config.issuer,
      audience: config.audience,
      jwks: keys === null ? { keys: [] } : publicJwks(keys),
      signer,
      issuerUrl: config.issuerUrl,
      issuerKeys: createIssuerKeys({
        fetchJson: options.fetchJson ?? httpsFetchJson,
        clock,
        ...(options.issuerCa === undefined ? {} : { ca: options.issuerCa }),
      }),
    });
    const keyringOpened = opened;
    const signerOpened = openedSigner;
    return {
      handler,
      store,
      digest,
      async close() {
        await signerOpened?.close();
        await keyringOpened?.close();
        await store.close();
      },
    };
  } catch (error) {
    await openedSigner?.close();
    await opened?.close();
    await store.close();
    throw error;
  }
}
