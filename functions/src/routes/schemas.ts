/** Field schemas shared by routes, built from the grammars in the API contract. */
import { z } from 'zod';
import { AGENT_ID_PATTERN, KEY_ID_PATTERN } from '@agentpack-identity/protocol';

export const agentIdSchema = z
  .string()
  .regex(AGENT_ID_PATTERN, 'agent_id must match ^[a-z0-9][a-z0-9_-]{2,62}$');

export const keyIdSchema = z.string().regex(KEY_ID_PATTERN, 'key_id is not a device key id');

/** A short human label: 1–128 characters, no control characters. */
export const labelSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\p{Cc}]+$/u, 'label must not contain control characters');

export const displayNameSchema = z
  .string()
  .trim()
  .min(1, 'display_name must not be empty')
  .max(200)
  .regex(/^[^\p{Cc}]+$/u, 'display_name must not contain control characters');

/** A positive whole number of seconds. */
export const ttlSecondsSchema = z.number().int().positive();
