/**
 * Configuration, read once at start (cold start on Cloud Functions) and checked there: a bad
 * value stops the service with a message naming the variable, never the secret in it.
 */
import { LOOPBACK_HOST_PATTERN } from '@agentpack-identity/protocol';
import { bridgeKeyring, parseBridgeKeys, type BridgeKeyring } from '../auth/bridge-keys.js';

/** `projects/P/locations/L/keyRings/R/cryptoKeys/K`: a CryptoKey, never one of its versions. */
export const CRYPTO_KEY_NAME =
  /^projects\/[a-z0-9][a-z0-9.:-]{0,99}\/locations\/[a-z0-9-]{1,63}\/keyRings\/[A-Za-z0-9_-]{1,63}\/cryptoKeys\/[A-Za-z0-9_-]{1,63}$/;

export type StoreKind = 'sqlite' | 'firestore';

/** Cloud KMS as the secrets keyring (`AGENTPACK_KMS_KEY`, `AGENTPACK_KMS_ENDPOINT`, `AGENTPACK_KMS_INSECURE`). */
export interface KmsConfig {
  /** The CryptoKey: `projects/P/locations/L/keyRings/R/cryptoKeys/K`. */
  keyName: string;
  /** Another endpoint than Google's (an emulator, a test server); null: the real service. */
  endpoint: { host: string; port: number } | null;
  /** Plaintext gRPC without Google credentials; only ever to a loopback endpoint. */
  insecure: boolean;
}

/**
 * What it takes to open the store and the secrets keyring: the server needs it, and so do
 * maintenance commands (`secrets rewrap`) that need no bridge key.
 */
export interface StorageConfig {
  store: StoreKind;
  /** Where the embedded store and the generated dev keys live. */
  dataDir: string;
  /** SQLite durability: `normal` survives a killed process, `full` also a power cut. */
  sqliteSynchronous: 'normal' | 'full';
  /** The secrets key-encryption key (`AGENTPACK_SECRETS_KEK`), when given by the environment. */
  secretsKek: string | null;
  /**
   * The key of the digests of presented secrets (`AGENTPACK_DIGEST_KEY`, 32 bytes as unpadded
   * base64url): required with the firestore store; locally a file in the data dir otherwise.
   */
  digestKey: string | null;
  /** Cloud KMS for secrets (production), or null. */
  kms: KmsConfig | null;
}

export interface Config extends StorageConfig {
  bridgeKeys: BridgeKeyring;
  issuer: string;
  audience: string;
  /** The JWKS of public capability-token keys (`AGENTPACK_CAPABILITY_KEYS`); null if unset. */
  capabilityKeys: string | null;
  /** Longest capability token lifetime accepted (`AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`). */
  capabilityMaxTtlSeconds: number;
}

/** Default and ceiling of `AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`. */
export const CAPABILITY_MAX_TTL_DEFAULT = 900;
export const CAPABILITY_MAX_TTL_CEILING = 86_400;

function positiveInt(env: Env, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new Error(`${name} must be a whole number from 1 to ${max}`);
  }
  return n;
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Builds the configuration from environment variables. `defaults.store` is `sqlite` for the
 * local server and `firestore` for the Cloud Function; `AGENTPACK_STORE` overrides it.
 */
export function loadConfig(
  env: Env,
  defaults: { store: StoreKind; bridgeKeys?: string; capabilityKeys?: string },
): Config {
  const storage = loadStorageConfig(env, defaults);
  const rawKeys = env['AGENTPACK_BRIDGE_KEYS'] ?? defaults.bridgeKeys;
  return {
    ...storage,
    bridgeKeys: bridgeKeyring(parseBridgeKeys(rawKeys)),
    issuer: env['AGENTPACK_ISSUER'] ?? 'agentpack-identity',
    audience: env['AGENTPACK_AUDIENCE'] ?? 'agentpack',
    capabilityKeys: nonEmpty(env['AGENTPACK_CAPABILITY_KEYS']) ?? defaults.capabilityKeys ?? null,
    capabilityMaxTtlSeconds: positiveInt(
      env,
      'AGENTPACK_CAPABILITY_MAX_TTL_SECONDS',
      CAPABILITY_MAX_TTL_DEFAULT,
      CAPABILITY_MAX_TTL_CEILING,
    ),
  };
}

/**
 * The store and keyring part of the configuration alone (see {@link loadConfig}), checked the
 * same way: `AGENTPACK_STORE`, `AGENTPACK_DATA_DIR`, `AGENTPACK_SECRETS_KEK`,
 * `AGENTPACK_DIGEST_KEY` and the `AGENTPACK_KMS_*` variables.
 */
export function loadStorageConfig(env: Env, defaults: { store: StoreKind }): StorageConfig {
  const store = env['AGENTPACK_STORE'] ?? defaults.store;
  if (store !== 'sqlite' && store !== 'firestore') {
    throw new Error(`AGENTPACK_STORE must be "sqlite" or "firestore", not "${store}"`);
  }
  const secretsKek = nonEmpty(env['AGENTPACK_SECRETS_KEK']) ?? null;
  const kms = loadKmsConfig(env);
  // Policy: exactly one source of the key-encryption key. Both set is a deployment mistake, and
  // guessing which one was meant could wrap new secrets under the wrong key.
  if (kms !== null && secretsKek !== null) {
    throw new Error('set AGENTPACK_KMS_KEY or AGENTPACK_SECRETS_KEK, not both');
  }
  return {
    store,
    dataDir: env['AGENTPACK_DATA_DIR'] ?? './.data',
    sqliteSynchronous: sqliteSynchronous(env['AGENTPACK_SQLITE_SYNCHRONOUS']),
    secretsKek,
    digestKey: nonEmpty(env['AGENTPACK_DIGEST_KEY']) ?? null,
    kms,
  };
}

function loadKmsConfig(env: Env): KmsConfig | null {
  const keyName = nonEmpty(env['AGENTPACK_KMS_KEY'])?.trim();
  const rawEndpoint = nonEmpty(env['AGENTPACK_KMS_ENDPOINT'])?.trim();
  const rawInsecure = nonEmpty(env['AGENTPACK_KMS_INSECURE'])?.trim();
  if (keyName === undefined) {
    if (rawEndpoint !== undefined || rawInsecure !== undefined) {
      throw new Error('AGENTPACK_KMS_ENDPOINT and AGENTPACK_KMS_INSECURE need AGENTPACK_KMS_KEY');
    }
    return null;
  }
  if (!CRYPTO_KEY_NAME.test(keyName)) {
    throw new Error(
      /\/cryptoKeyVersions\//.test(keyName)
        ? 'AGENTPACK_KMS_KEY must name the CryptoKey, not one of its versions (rotation moves the primary)'
        : 'AGENTPACK_KMS_KEY must be projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY',
    );
  }
  if (rawInsecure !== undefined && rawInsecure !== 'true' && rawInsecure !== 'false') {
    throw new Error('AGENTPACK_KMS_INSECURE must be "true" or "false"');
  }
  const insecure = rawInsecure === 'true';
  let endpoint: KmsConfig['endpoint'] = null;
  if (rawEndpoint !== undefined) {
    const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/.exec(rawEndpoint);
    const port = Number(m?.[2]);
    if (m === null || port < 1 || port > 65535) {
      throw new Error('AGENTPACK_KMS_ENDPOINT must be HOST:PORT');
    }
    endpoint = { host: m[1]!, port };
  }
  // Policy: plaintext gRPC carries data keys in clear, so it is for a local emulator only.
  if (insecure && (endpoint === null || !LOOPBACK_HOST_PATTERN.test(endpoint.host))) {
    throw new Error(
      'AGENTPACK_KMS_INSECURE=true is allowed only with a loopback AGENTPACK_KMS_ENDPOINT',
    );
  }
  return { keyName, endpoint, insecure };
}

function sqliteSynchronous(raw: string | undefined): 'normal' | 'full' {
  if (raw === undefined || raw === '' || raw === 'normal') return 'normal';
  if (raw === 'full') return 'full';
  throw new Error('AGENTPACK_SQLITE_SYNCHRONOUS must be "normal" or "full"');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
