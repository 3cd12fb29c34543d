/**
 * Answers of the operator plane's lists and the audit query: `{<items>: [...], next_cursor}`.
 * No list shows a key, a code, a digest or a value.
 */
import { z } from 'zod';
import { agentIdField, fingerprintField, keyIdField, runIdField } from '../requests/fields.js';
import { AUDIT_CATEGORIES } from '../requests/lists.js';
import { agentResponse } from './agents.js';
import { nextCursorField, timeField } from './fields.js';
import { delegationResponse, RUN_STATUSES } from './runs.js';

/** `/agents/list`: by `agent_id`. */
export const agentsListResponse = z
  .strictObject({ agents: z.array(agentResponse), next_cursor: nextCursorField })
  .meta({ id: 'AgentList' });

/** A device key as a list shows it: its handle and state, never the key or its digest. */
export const deviceKeyItem = z
  .strictObject({
    key_id: keyIdField,
    agent_id: agentIdField,
    label: z.string().nullable(),
    created_at: timeField,
    expires_at: timeField.nullable(),
    revoked_at: timeField.nullable(),
    /** True for an enrolled device (pinned public keys), false for a plain bearer key. */
    enrolled: z.boolean(),
    fingerprint: fingerprintField.nullable(),
  })
  .meta({ id: 'DeviceKey' });

/** `/device/list`: by creation time. */
export const deviceListResponse = z
  .strictObject({ keys: z.array(deviceKeyItem), next_cursor: nextCursorField })
  .meta({ id: 'DeviceKeyList' });

/** A delegation as a list shows it: its view and whether (when) it was revoked. */
export const delegationItem = delegationResponse
  .extend({ revoked_at: timeField.nullable() })
  .meta({ id: 'DelegationItem' });

/** `/delegations/list`: by creation time. */
export const delegationsListResponse = z
  .strictObject({ delegations: z.array(delegationItem), next_cursor: nextCursorField })
  .meta({ id: 'DelegationList' });

/** A run as `/runs/list` shows it, with its status as every use of the run checks it. */
export const runItem = z
  .strictObject({
    run_id: runIdField,
    agent_id: agentIdField,
    parent_run_id: runIdField.nullable(),
    root_run_id: runIdField,
    task: z.string(),
    scope: z.array(z.string()),
    status: z.enum(RUN_STATUSES),
    created_at: timeField,
    expires_at: timeField,
  })
  .meta({ id: 'RunItem' });

/** `/runs/list`: by creation time. */
export const runsListResponse = z
  .strictObject({ runs: z.array(runItem), next_cursor: nextCursorField })
  .meta({ id: 'RunList' });

/** Every action an audit event can record. */
export const AUDIT_ACTIONS = [
  'agent.create',
  'agent.disable',
  'agent.enable',
  'agent.retire',
  'agent.retire_complete',
  'device_key.issue',
  'device_key.rotate',
  'device_key.revoke',
  'device.enrollment_create',
  'device.enrollment_expire',
  'device.enroll',
  'device.enroll_mismatch',
  'device.evict',
  'delegation.create',
  'delegation.revoke',
  'token.register',
  'setting.set',
  'secret.put',
  'secret.get',
  'secret.delete',
  'secret.undelete',
  'secret.destroy',
  'secret.resolve',
  'secret.prune',
  'secret.rewrap',
  'secret.grant',
  'secret.ungrant',
  'run.spawn',
  'run.complete',
  'run.revoke',
  'run.token',
  'auth.exchange',
  'issuer.put',
  'issuer.delete',
  'role.put',
  'role.delete',
  'digest.migrate',
] as const;

/** Who an audit event names as its actor. */
export const AUDIT_ACTOR_KINDS = [
  'bridge',
  'device',
  'token',
  'run',
  'maintenance',
  'federated',
] as const;

/**
 * Who did it, by id only. On a delegated call the chain is whole: the delegate (`agent_id` with
 * its `key_id` or `jti`), `via_delegation`, and `for_agent` (the delegator).
 */
export const auditActor = z
  .strictObject({
    kind: z.enum(AUDIT_ACTOR_KINDS),
    bridge_key_id: z.string().optional(),
    agent_id: z.string().optional(),
    key_id: z.string().optional(),
    jti: z.string().optional(),
    via_delegation: z.string().optional(),
    for_agent: z.string().optional(),
    run_id: z.string().optional(),
    root_run_id: z.string().optional(),
    role: z.string().optional(),
    issuer: z.string().optional(),
    subject: z.string().optional(),
  })
  .meta({ id: 'AuditActor' });

/** What it was done to. */
export const auditTarget = z
  .strictObject({
    agent_id: z.string().optional(),
    key_id: z.string().optional(),
    delegation_id: z.string().optional(),
    setting: z.string().optional(),
    jti: z.string().optional(),
    run_id: z.string().optional(),
    secret: z.string().optional(),
    version: z.number().int().optional(),
    issuer: z.string().optional(),
    role: z.string().optional(),
  })
  .meta({ id: 'AuditTarget' });

/** An audit event: names, ids and versions, never a value, a key or a code. */
export const auditEvent = z
  .strictObject({
    event_id: z.string(),
    at: timeField,
    category: z.enum(AUDIT_CATEGORIES),
    action: z.enum(AUDIT_ACTIONS),
    actor: auditActor,
    target: auditTarget,
    /** The run that caused the event, or that it is about. */
    run_id: z.string().optional(),
    /** The root of that run's tree, when the event was caused within one. */
    root_run_id: z.string().optional(),
    details: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))
      .optional(),
  })
  .meta({ id: 'AuditEvent' });

/** `/audit/query`: oldest first. */
export const auditQueryResponse = z
  .strictObject({ events: z.array(auditEvent), next_cursor: nextCursorField })
  .meta({ id: 'AuditEventList' });
