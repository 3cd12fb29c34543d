/** Answers of workload federation: trusted issuers and roles (`/auth/exchange` answers a run). */
import { z } from 'zod';
import { agentIdField } from '../requests/fields.js';
import { nextCursorField, timeField } from './fields.js';

/** A pinned key as it is stored and answered: its public members only. */
export const pinnedJwk = z
  .strictObject({
    kty: z.string().optional(),
    crv: z.string().optional(),
    x: z.string().optional(),
    y: z.string().optional(),
    n: z.string().optional(),
    e: z.string().optional(),
    kid: z.string().optional(),
    alg: z.string().optional(),
    use: z.string().optional(),
    key_ops: z.array(z.string()).optional(),
  })
  .meta({ id: 'PinnedJwk' });

/** A trusted issuer; `jwks` holds the pinned keys (public members), or null when discovered. */
export const issuerResponse = z
  .strictObject({
    issuer: z.string(),
    jwks: z.strictObject({ keys: z.array(pinnedJwk) }).nullable(),
    discovery: z.boolean(),
    created_at: timeField,
    updated_at: timeField,
  })
  .meta({ id: 'Issuer' });

/** `/issuers/list`: by issuer identifier. */
export const issuersListResponse = z
  .strictObject({ issuers: z.array(issuerResponse), next_cursor: nextCursorField })
  .meta({ id: 'IssuerList' });

/** `/issuers/delete`. */
export const issuersDeleteResponse = z
  .strictObject({ issuer: z.string(), deleted: z.literal(true) })
  .meta({ id: 'DeletedIssuer' });

/** A role: which subject tokens of which issuer become root runs of which agent. */
export const roleResponse = z
  .strictObject({
    role: z.string(),
    issuer: z.string(),
    audiences: z.array(z.string()),
    bound_claims: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
    agent_id: agentIdField,
    scope: z.array(z.string()),
    ttl_seconds: z.number().int().positive(),
    created_at: timeField,
    updated_at: timeField,
  })
  .meta({ id: 'Role' });

/** `/roles/list`: by role name. */
export const rolesListResponse = z
  .strictObject({ roles: z.array(roleResponse), next_cursor: nextCursorField })
  .meta({ id: 'RoleList' });

/** `/roles/delete`. */
export const rolesDeleteResponse = z
  .strictObject({ role: z.string(), deleted: z.literal(true) })
  .meta({ id: 'DeletedRole' });
