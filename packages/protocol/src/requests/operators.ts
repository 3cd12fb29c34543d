/** Requests of the bridge-only routes: settings and the token ledger. */
import { z } from 'zod';
import { agentIdField } from './fields.js';

export const settingsListRequest = z.strictObject({});

/** The value is checked against the key's own schema by the service (its allow-list). */
export const settingsSetRequest = z.strictObject({
  key: z.string().min(1).max(100),
  value: z.unknown(),
});

const unixSeconds = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 40);

export const tokensRegisterRequest = z
  .strictObject({
    jti: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x21-\x7e]+$/, 'jti must be printable ASCII'),
    sub: agentIdField,
    // Printable ASCII only: these land in the ledger and the audit as they are.
    scope: z
      .array(
        z
          .string()
          .min(1)
          .max(200)
          .regex(/^[\x21-\x7e]+$/, 'scope entries must be printable ASCII'),
      )
      .min(1)
      .max(64),
    iat: unixSeconds,
    exp: unixSeconds,
    kid: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x21-\x7e]+$/, 'kid must be printable ASCII'),
  })
  .refine((t) => t.exp > t.iat, { message: 'exp must be after iat', path: ['exp'] });
