/**
 * Requests of workload federation: trusted issuers, roles, `/auth/exchange` and
 * `/runs/token`. The shapes are checked here; what needs the store or the clock (an issuer's
 * keys, a role's agent and scope, the TTL ceiling) is the service's.
 */
import { z } from 'zod';
import { CLAIM_NAME_PATTERN, ROLE_PATTERN } from '../grammar.js';
import { ID_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../run-token.js';
import { cursorField, listLimitField } from './lists.js';
import { agentIdField, publicKeyField, scopeField, taskField, ttlSecondsField } from './fields.js';

/** An issuer identifier (`iss`): 1–256 printable ASCII characters, no spaces. */
export const issuerField = z
  .string()
  .min(1, 'issuer must not be empty')
  .max(256, 'issuer must be at most 256 characters')
  .regex(/^[\x21-\x7e]+$/, 'issuer must be printable ASCII without spaces');

/** An audience: 1–256 characters of printable ASCII. */
export const audienceField = z
  .string()
  .min(1, 'audience must not be empty')
  .max(256, 'audience must be at most 256 characters')
  .regex(/^[\x20-\x7e]+$/, 'audience must be printable ASCII');

export const roleField = z
  .string()
  .regex(ROLE_PATTERN, 'role must match ^[a-z0-9][a-z0-9_-]{2,62}$');

/** A JWKS given inline: `{keys: [...]}`, 1–20 keys (each key's checks are the service's). */
export const inlineJwksField = z.strictObject({
  keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20),
});

/**
 * A bound value: 1–256 characters that start with a literal character, so a value is never
 * `*` alone nor `*…` (which would match every subject of a multi-tenant issuer).
 */
const boundValue = z
  .string()
  .min(1, 'a bound claim value must not be empty')
  .max(256, 'a bound claim value must be at most 256 characters')
  .refine(
    (v) => !v.startsWith('*'),
    'a bound claim value must not start with *: bind a fixed prefix',
  );

/**
 * Claims a role binds: 1–16 claim names, each a value or 1–32 values (`*` matches any run).
 * A `__proto__` key (which a record schema would silently drop) is refused by name.
 */
export const boundClaimsField = z.preprocess(
  (value) =>
    value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__')
      ? { '(__proto__)': '' }
      : value,
  z
    .record(
      z
        .string()
        .regex(
          CLAIM_NAME_PATTERN,
          'a bound claim name must match ^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$',
        ),
      z.union([boundValue, z.array(boundValue).min(1).max(32)]),
    )
    .refine(
      (claims) => Object.keys(claims).length >= 1,
      'bound_claims must bind at least one claim',
    )
    .refine(
      (claims) => Object.keys(claims).length <= 16,
      'bound_claims may bind at most 16 claims',
    ),
);

const page = { cursor: cursorField.optional(), limit: listLimitField.optional() };

/** `POST /issuers/put` (bridge). Without `jwks`, the keys are discovered over HTTPS. */
export const issuersPutRequest = z.strictObject({
  issuer: issuerField,
  jwks: inlineJwksField.optional(),
});
export const issuersListRequest = z.strictObject(page);
export const issuersDeleteRequest = z.strictObject({ issuer: issuerField });

/** `POST /roles/put` (bridge). */
export const rolesPutRequest = z.strictObject({
  role: roleField,
  issuer: issuerField,
  audiences: z.array(audienceField).min(1).max(16),
  bound_claims: boundClaimsField,
  agent_id: agentIdField,
  scope: scopeField,
  ttl_seconds: ttlSecondsField,
});
export const rolesGetRequest = z.strictObject({ role: roleField });
export const rolesListRequest = z.strictObject(page);
export const rolesDeleteRequest = z.strictObject({ role: roleField });

/** `POST /auth/exchange`: the subject token is the credential (RFC 8693 names accepted). */
export const authExchangeRequest = z.strictObject({
  role: roleField,
  subject_token: z
    .string()
    .min(1, 'subject_token must not be empty')
    .max(16_384, 'subject_token is too long'),
  public_key: publicKeyField,
  task: taskField.optional(),
  ttl_seconds: ttlSecondsField.optional(),
  audience: audienceField.optional(),
  grant_type: z
    .literal(TOKEN_EXCHANGE_GRANT, `grant_type must be ${TOKEN_EXCHANGE_GRANT}`)
    .optional(),
  subject_token_type: z
    .enum([JWT_TOKEN_TYPE, ID_TOKEN_TYPE], `subject_token_type must be ${JWT_TOKEN_TYPE}`)
    .optional(),
  requested_token_type: z
    .literal(JWT_TOKEN_TYPE, `requested_token_type must be ${JWT_TOKEN_TYPE}`)
    .optional(),
});

/** `POST /runs/token` (the run itself): a run token for another audience. */
export const runsTokenRequest = z.strictObject({ audience: audienceField });
