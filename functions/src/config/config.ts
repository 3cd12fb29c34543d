/**
 * Configuration, read once at start (cold start on Cloud Functions) and checked there: a bad
 * value stops the service with a message naming the variable, never the secret in it.
 */
import { LOOPBACK_HOST_PATTERN } from '@agentpack-identity/protocol';
import { bridgeKeyring, parseBridgeKeys, type BridgeKeyring } from '../auth/bridge-keys.js';

/** `projects/P/locations/L/keyRings/R/cryptoKeys/K`: a CryptoKey, never one of its versions. */
export const CRYPTO_KEY_NAME =
  /^projects\/[a-z0-9][a-z0-9.:-]{0,99}\/locations\/[a-z0-9-]{1,63}\/keyRings\/[A-Za-z0-9_-]{1,63}\/cryptoKeys\/[A-Za-z0-9_-]{1,63}$/;

/** `projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`: one key version. */
export const CRYPTO_KEY_VERSION_NAME = new RegExp(
  `${CRYPTO_KEY_NAME.source.slice(0, -1)}\\/cryptoKeyVersions\\/[1-9][0-9]{0,19}$`,
);

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

/**
 * Where the online signing key of run tokens lives: a Cloud KMS CryptoKeyVersion
 * (`AGENTPACK_KMS_SIGNING_KEY`, production), a JWKS of private keys in the environment
 * (`AGENTPACK_SIGNING_KEY`: emulators, deployments without KMS), or the key file of the data
 * dir (embedded mode).
 */
export type SigningConfig =
  | { kind: 'kms'; versionName: string; endpoint: KmsConfig['endpoint']; insecure: boolean }
  | { kind: 'env'; keys: string }
  | { kind: 'file' };

export interface Config extends StorageConfig {
  bridgeKeys: BridgeKeyring;
  issuer: string;
  audience: string;
  /** The JWKS of public capability-token keys (`AGENTPACK_CAPABILITY_KEYS`); null if unset. */
  capabilityKeys: string | null;
  /** Longest capability token lifetime accepted (`AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`). */
  capabilityMaxTtlSeconds: number;
  /**
   * The `iss` of run tokens and the OIDC issuer (`AGENTPACK_ISSUER_URL`); locally the service's
   * own base URL by default. Required with the firestore store.
   */
  issuerUrl: string;
  signing: SigningConfig;
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
  defaults: {
    store: StoreKind;
    bridgeKeys?: string;
    capabilityKeys?: string;
    /** The local server's own base URL, the issuer when `AGENTPACK_ISSUER_URL` is unset. */
    issuerUrl?: string;
  },
): Config {
  const storage = loadStorageConfig(env, defaults);
  // Locally the issuer is the server's own base URL (the local server passes the address it
  // bound; else HOST and PORT say where it listens).
  const issuerUrl =
    nonEmpty(env['AGENTPACK_ISSUER_URL'])?.trim() ??
    defaults.issuerUrl ??
    (storage.store === 'sqlite'
      ? `http://${env['HOST'] ?? '127.0.0.1'}:${env['PORT'] ?? '8787'}`
      : undefined);
  if (issuerUrl === undefined) {
    throw new Error(
      'AGENTPACK_ISSUER_URL is required with the firestore store (the https URL the service is reached at)',
    );
  }
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
    issuerUrl: checkIssuerUrl(issuerUrl),
    signing: loadSigningConfig(env, storage),
  };
}

/**
 * The issuer URL: `https://host[:port][/path]`, or plain http to a loopback host (the local
 * server); no query, fragment, credentials or trailing slash, since verifiers compare `iss`
 * byte for byte and append `/.well-known/...` to it.
 */
export function checkIssuerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('AGENTPACK_ISSUER_URL must be a URL such as https://identity.example.com');
  }
  const loopback = LOOPBACK_HOST_PATTERN.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new Error(
      'AGENTPACK_ISSUER_URL must be an https URL (plain http only for a loopback host)',
    );
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new Error('AGENTPACK_ISSUER_URL must not have a query, a fragment or credentials');
  }
  if (raw.endsWith('/') || raw.length > 200 || url.href.replace(/\/$/, '') !== raw) {
    throw new Error(
      'AGENTPACK_ISSUER_URL must be written canonically, without a trailing slash (at most 200 characters)',
    );
  }
  return raw;
}

function loadSigningConfig(env: Env, storage: StorageConfig): SigningConfig {
  const versionName = nonEmpty(env['AGENTPACK_KMS_SIGNING_KEY'])?.trim();
  const keys = nonEmpty(env['AGENTPACK_SIGNING_KEY']);
  if (versionName !== undefined && keys !== undefined) {
    throw new Error('set AGENTPACK_KMS_SIGNING_KEY or AGENTPACK_SIGNING_KEY, not both');
  }
  if (versionName !== undefined) {
    if (!CRYPTO_KEY_VERSION_NAME.test(versionName)) {
      throw new Error(
        'AGENTPACK_KMS_SIGNING_KEY must name a CryptoKeyVersion: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N',
      );
    }
    const { endpoint, insecure } = kmsEndpoint(env);
    return { kind: 'kms', versionName, endpoint, insecure };
  }
  if (keys !== undefined) return { kind: 'env', keys };
  if (storage.store !== 'sqlite') {
    throw new Error(
      'AGENTPACK_KMS_SIGNING_KEY (or AGENTPACK_SIGNING_KEY) is required with the firestore store',
    );
  }
  return { kind: 'file' };
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
    if (
      (rawEndpoint !== undefined || rawInsecure !== undefined) &&
      nonEmpty(env['AGENTPACK_KMS_SIGNING_KEY']) === undefined
    ) {
      throw new Error(
        'AGENTPACK_KMS_ENDPOINT and AGENTPACK_KMS_INSECURE need AGENTPACK_KMS_KEY or AGENTPACK_KMS_SIGNING_KEY',
      );
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
  const { endpoint, insecure } = kmsEndpoint(env);
  return { keyName, endpoint, insecure };
}

/** `AGENTPACK_KMS_ENDPOINT` and `AGENTPACK_KMS_INSECURE`, shared by both uses of Cloud KMS. */
function kmsEndpoint(env: Env): Pick<KmsConfig, 'endpoint' | 'insecure'> {
  const rawEndpoint = nonEmpty(env['AGENTPACK_KMS_ENDPOINT'])?.trim();
  const rawInsecure = nonEmpty(env['AGENTPACK_KMS_INSECURE'])?.trim();
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
  return { endpoint, insecure };
}

function sqliteSynchronous(raw: string | undefined): 'normal' | 'full' {
  if (raw === undefined || raw === '' || raw === 'normal') return 'normal';
  if (raw === 'full') return 'full';
  throw new Error('AGENTPACK_SQLITE_SYNCHRONOUS must be "normal" or "full"');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
