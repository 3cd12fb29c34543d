/** Requests of the run and delegation routes. */
import { z } from 'zod';
import {
  agentIdField,
  delegationIdField,
  publicKeyField,
  runIdField,
  scopeField,
  taskField,
  ttlSecondsField,
} from './fields.js';
import { audienceField } from './federation.js';

export const runsSpawnRequest = z.strictObject({
  task: taskField,
  scope: scopeField,
  ttl_seconds: ttlSecondsField,
  public_key: publicKeyField,
  /** The `aud` of the run token in the answer; default: the service's issuer URL. */
  audience: audienceField.optional(),
});

export const runsCompleteRequest = z.strictObject({});

export const runsRevokeRequest = z.strictObject({ run_id: runIdField });

export const delegateRequest = z.strictObject({
  to_agent: agentIdField,
  scope: scopeField,
  ttl_seconds: ttlSecondsField,
});

export const delegateRevokeRequest = z.strictObject({ delegation_id: delegationIdField });
