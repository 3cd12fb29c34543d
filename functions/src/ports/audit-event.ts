/**
 * The audit event as the store keeps it: every mint, rotate, revoke, disable, enable,
 * delegation, setting change and secret access appends one, in the same transaction as the
 * change. No key material and no secret value ever enters an event: actors and targets are
 * named by ids (agent_id, key_id, jti, delegation_id, a bridge key's short digest).
 */

export type AuditCategory = 'auth' | 'settings' | 'secrets';

export type AuditAction =
  | 'agent.create'
  | 'agent.disable'
  | 'agent.enable'
  | 'agent.retire'
  | 'agent.retire_complete'
  | 'device_key.issue'
  | 'device_key.rotate'
  | 'device_key.revoke'
  | 'device.enrollment_create'
  | 'device.enrollment_expire'
  | 'device.enroll'
  | 'device.enroll_mismatch'
  | 'device.evict'
  | 'delegation.create'
  | 'delegation.revoke'
  | 'token.register'
  | 'setting.set'
  | 'secret.put'
  | 'secret.get'
  | 'secret.delete'
  | 'secret.undelete'
  | 'secret.destroy'
  | 'secret.resolve'
  | 'secret.prune'
  | 'secret.rewrap'
  | 'secret.grant'
  | 'secret.ungrant'
  | 'run.spawn'
  | 'run.complete'
  | 'run.revoke'
  | 'run.token'
  | 'auth.exchange'
  | 'issuer.put'
  | 'issuer.delete'
  | 'role.put'
  | 'role.delete'
  | 'digest.migrate';

/**
 * Who did it, by id only. On a delegated call the chain is whole: the delegate (`agent_id` with
 * its `key_id` or `jti`), `via_delegation`, and `for_agent` (the delegator).
 */
export interface AuditActor {
  /** `maintenance`: an operator's job run outside a request (e.g. `secrets rewrap`). */
  kind: 'bridge' | 'device' | 'token' | 'run' | 'maintenance' | 'federated';
  bridge_key_id?: string;
  agent_id?: string;
  key_id?: string;
  jti?: string;
  via_delegation?: string;
  for_agent?: string;
  /** Set on every event caused by a run, so one query shows what a whole task tree did. */
  run_id?: string;
  root_run_id?: string;
  /** A federated workload (`/auth/exchange`): the role, the issuer and the token's `sub`. */
  role?: string;
  issuer?: string;
  subject?: string;
}

/** What it was done to. */
export interface AuditTarget {
  agent_id?: string;
  key_id?: string;
  delegation_id?: string;
  setting?: string;
  jti?: string;
  run_id?: string;
  secret?: string;
  version?: number;
  issuer?: string;
  role?: string;
}

export interface AuditEvent {
  category: AuditCategory;
  action: AuditAction;
  actor: AuditActor;
  target: AuditTarget;
  at: string;
  details?: Record<string, string | number | boolean | null>;
}
