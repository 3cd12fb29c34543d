/** The public documents: key sets, OIDC discovery, liveness and the OpenAPI document. */
import { z } from 'zod';
import { base64urlField } from './fields.js';

/** A capability-token verification key (Ed25519), pinned in configuration. */
export const ed25519PublicJwk = z
  .strictObject({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: base64urlField,
    kid: z.string(),
    alg: z.literal('EdDSA'),
    use: z.literal('sig'),
  })
  .meta({ id: 'Ed25519PublicJwk' });

/** A run-token verification key (ES256): the service's online signing key. */
export const p256PublicJwk = z
  .strictObject({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: base64urlField,
    y: base64urlField,
    kid: z.string(),
    alg: z.literal('ES256'),
    use: z.literal('sig'),
  })
  .meta({ id: 'P256PublicJwk' });

/** `GET /.well-known/agentpack-identity`: every public key the service's tokens are signed with. */
export const wellKnownResponse = z
  .strictObject({
    issuer: z.string(),
    audience: z.string(),
    jwks: z.strictObject({ keys: z.array(z.union([ed25519PublicJwk, p256PublicJwk])) }),
  })
  .meta({ id: 'IdentityDocument' });

/** `GET /.well-known/jwks.json`: the run-token keys (the OIDC `jwks_uri`). */
export const jwksResponse = z
  .strictObject({ keys: z.array(p256PublicJwk) })
  .meta({ id: 'RunTokenJwks' });

/** `GET /.well-known/openid-configuration`: OIDC discovery of the run-token issuer. */
export const openidConfigurationResponse = z
  .strictObject({
    issuer: z.string(),
    jwks_uri: z.string(),
    id_token_signing_alg_values_supported: z.array(z.literal('ES256')),
    response_types_supported: z.array(z.string()),
    subject_types_supported: z.array(z.string()),
    claims_supported: z.array(z.string()),
  })
  .meta({ id: 'OpenIdConfiguration' });

/** `GET /healthz`. */
export const healthzResponse = z.strictObject({ ok: z.literal(true) }).meta({ id: 'Health' });

/** `GET /openapi.json`: an OpenAPI 3.1 document (described here by its top level only). */
export const openApiDocumentResponse = z
  .looseObject({
    openapi: z.string().regex(/^3\.1\.\d+$/),
    info: z.looseObject({ title: z.string(), version: z.string() }),
    paths: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'OpenApiDocument' });
