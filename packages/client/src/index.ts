/**
 * `@agentpack-identity/client`: a typed client of the agentpack-identity service over `fetch`,
 * for agents and operators, on Node 20+ and any runtime with `fetch` and Web Crypto's
 * getRandomValues. Request and response types come from the service's own schemas.
 *
 * @example
 * import { createClient } from '@agentpack-identity/client';
 * const client = createClient({ url, credential: { kind: 'device', deviceKey } });
 * const { value } = await client.secrets.get('openai_key');
 */
export { createClient } from './client.js';
export type {
  AgentpackClient,
  Call,
  ClientOptions,
  ResolvedValue,
  SecretGetOptions,
  SecretPutOptions,
  SecretValue,
  StartedRun,
} from './api.js';
export type {
  BridgeCredential,
  Credential,
  DeviceCredential,
  EnrolledDeviceCredential,
  KeyInput,
  RunCredential,
  TokenCredential,
} from './credentials.js';
export {
  AgentpackError,
  isAgentpackError,
  type ClientErrorCode,
  type ErrorDetails,
} from './errors.js';
export type { CacheOptions, SecretCacheControl } from './cache.js';
export type { AbortSignalLike, RetryOptions } from './retry.js';
export type { CallOptions, FetchInit, FetchLike, ResponseLike } from './transport.js';
export { ROUTES, type RetryClass, type RpcInput, type RpcName, type RpcOutput } from './routes.js';
export {
  fetchJwks,
  TokenVerificationError,
  verifyCapabilityToken,
  verifyRunToken,
  type CapabilityClaims,
  type Jwk,
  type Jwks,
  type RunTokenClaims,
  type TokenRefusal,
  type VerifyOptions,
} from './tokens.js';
export {
  deviceFingerprint,
  enrollDevice,
  generateDeviceKeys,
  type DeviceKeyPairs,
  type EnrollDeviceOptions,
  type EnrolledDevice,
} from './enroll.js';
export type { CryptoChoice } from './crypto/backend.js';
