/**
 * Who an audit event names as its actor: a principal, by ids only (the event types themselves
 * are the store's, in ports/audit-event.ts).
 */
import type { AuditActor } from '../ports/audit-event.js';
import type { Principal } from './principal.js';

export type {
  AuditAction,
  AuditActor,
  AuditCategory,
  AuditEvent,
  AuditTarget,
} from '../ports/audit-event.js';

/** The audit actor for a principal: ids only, with the delegation chain when there is one. */
export function actorOf(principal: Principal): AuditActor {
  switch (principal.kind) {
    case 'bridge':
      return { kind: 'bridge', bridge_key_id: principal.bridge_key_id };
    case 'run':
      return {
        kind: 'run',
        agent_id: principal.agent_id,
        run_id: principal.run_id,
        root_run_id: principal.root_run_id,
      };
    case 'device':
    case 'token': {
      const actor: AuditActor =
        principal.kind === 'device'
          ? { kind: 'device', agent_id: principal.agent_id, key_id: principal.key_id }
          : { kind: 'token', agent_id: principal.agent_id, jti: principal.jti };
      if (principal.delegation !== undefined) {
        actor.via_delegation = principal.delegation.delegation_id;
        actor.for_agent = principal.delegation.from_agent;
      }
      return actor;
    }
  }
}
