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

export const runsSpawnRequest = z.strictObject({
  task: taskField,
  scope: scopeField,
  ttl_seconds: ttlSecondsField,
  public_key: publicKeyField,
});

export const runsCompleteRequest = z.strictObject({});

export const runsRevokeRequest = z.strictObject({ run_id: runIdField });

export const delegateRequest = z.strictObject({
  to_agent: agentIdField,
  scope: scopeField,
  ttl_seconds: ttlSecondsField,
});

export const delegateRevokeRequest = z.strictObject({ delegation_id: delegationIdField });
