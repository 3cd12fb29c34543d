/**
 * Audit events: every mint, rotate, revoke, disable and enable appends one, in the same
 * transaction as the change. No key material ever enters an event: actors and targets are
 * named by ids (agent_id, key_id, a bridge key's short digest), never by a key.
 */
import type { Principal } from './principal.js';

export type AuditCategory = 'auth';

export type AuditAction =
  | 'agent.create'
  | 'agent.disable'
  | 'agent.enable'
  | 'device_key.issue'
  | 'device_key.rotate'
  | 'device_key.revoke';

/** Who did it: the verified caller, by id only. */
export interface AuditActor {
  kind: Principal['kind'];
  bridge_key_id?: string;
  agent_id?: string;
  key_id?: string;
}

/** What it was done to. */
export interface AuditTarget {
  agent_id: string;
  key_id?: string;
}

export interface AuditEvent {
  category: AuditCategory;
  action: AuditAction;
  actor: AuditActor;
  target: AuditTarget;
  at: string;
  details?: Record<string, string | number | boolean | null>;
}

/** The audit actor for a principal: ids only. */
export function actorOf(principal: Principal): AuditActor {
  switch (principal.kind) {
    case 'bridge':
      return { kind: 'bridge', bridge_key_id: principal.bridge_key_id };
    case 'device':
      return { kind: 'device', agent_id: principal.agent_id, key_id: principal.key_id };
  }
}
