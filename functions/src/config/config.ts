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
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Builds the configuration from environment variables. `defaults.store` is `sqlite` for the
 * local server and `firestore` for the Cloud Function; `AGENTPACK_STORE` overrides it.
 */
export function loadConfig(env: Env, defaults: { store: StoreKind; bridgeKeys?: string }): Config {
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
  };
}
