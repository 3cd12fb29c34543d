/**
 * Configuration, read once at start (cold start on Cloud Functions) and checked there: a bad
 * value stops the service with a message naming the variable, never the secret in it.
 */
import { bridgeKeyring, parseBridgeKeys, type BridgeKeyring } from '../auth/bridge-keys.js';

export type StoreKind = 'sqlite' | 'firestore';

export interface Config {
  store: StoreKind;
  /** Where the embedded store and the generated dev keys live. */
  dataDir: string;
  bridgeKeys: BridgeKeyring;
  issuer: string;
  audience: string;
  /** The JWKS of public capability-token keys (`AGENTPACK_CAPABILITY_KEYS`); null if unset. */
  capabilityKeys: string | null;
  /** Longest capability token lifetime accepted (`AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`). */
  capabilityMaxTtlSeconds: number;
  /** The secrets key-encryption key (`AGENTPACK_SECRETS_KEK`), when given by the environment. */
  secretsKek: string | null;
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
  const store = env['AGENTPACK_STORE'] ?? defaults.store;
  if (store !== 'sqlite' && store !== 'firestore') {
    throw new Error(`AGENTPACK_STORE must be "sqlite" or "firestore", not "${store}"`);
  }
  const rawKeys = env['AGENTPACK_BRIDGE_KEYS'] ?? defaults.bridgeKeys;
  return {
    store,
    dataDir: env['AGENTPACK_DATA_DIR'] ?? './.data',
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
    secretsKek: nonEmpty(env['AGENTPACK_SECRETS_KEK']) ?? null,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
