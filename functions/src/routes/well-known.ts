/**
 * The public documents: `/.well-known/agentpack-identity` (issuer, audience, and every public
 * key the service's tokens are signed with), `/.well-known/jwks.json` (the run-token keys, the
 * OIDC `jwks_uri`) and `/.well-known/openid-configuration` (OIDC discovery, so a cloud's
 * workload identity federation can trust run tokens).
 */
import {
  emptyRequest,
  jwksResponse,
  openidConfigurationResponse,
  RUN_TOKEN_ALG,
  RUN_TOKEN_CLAIMS,
  wellKnownResponse,
} from '@agentpack-identity/protocol';
import { defineRoute } from './route.js';

// Verifiers may cache the keys briefly; a key rotation publishes the new key before it signs.
const CACHED = { 'cache-control': 'public, max-age=300' };

export const wellKnown = defineRoute({
  method: 'GET',
  path: '/.well-known/agentpack-identity',
  rpc: '.well-known/agentpack-identity',
  policy: 'public',
  agentScoped: false,
  status: 200,
  headers: CACHED,
  input: emptyRequest,
  output: wellKnownResponse,
  handle: async ({ deps }) => ({
    issuer: deps.issuer,
    audience: deps.audience,
    jwks: { keys: [...deps.jwks.keys, ...(await deps.signer.publishedKeys())] },
  }),
});

/** GET /.well-known/jwks.json: the public keys of the online signing key (run tokens). */
export const jwksJson = defineRoute({
  method: 'GET',
  path: '/.well-known/jwks.json',
  rpc: '.well-known/jwks.json',
  policy: 'public',
  agentScoped: false,
  status: 200,
  headers: CACHED,
  input: emptyRequest,
  output: jwksResponse,
  handle: async ({ deps }) => ({ keys: await deps.signer.publishedKeys() }),
});

/** GET /.well-known/openid-configuration: OIDC discovery for the run-token issuer. */
export const openidConfiguration = defineRoute({
  method: 'GET',
  path: '/.well-known/openid-configuration',
  rpc: '.well-known/openid-configuration',
  policy: 'public',
  agentScoped: false,
  status: 200,
  headers: CACHED,
  input: emptyRequest,
  output: openidConfigurationResponse,
  handle: async ({ deps }) => ({
    issuer: deps.issuerUrl,
    jwks_uri: `${deps.issuerUrl}/.well-known/jwks.json`,
    id_token_signing_alg_values_supported: [RUN_TOKEN_ALG] satisfies 'ES256'[],
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    claims_supported: [...RUN_TOKEN_CLAIMS],
  }),
});
