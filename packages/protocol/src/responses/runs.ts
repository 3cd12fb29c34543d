/** Answers of the run and delegation routes, and a run's public identity document. */
import { z } from 'zod';
import { agentIdField, delegationIdField, runIdField } from '../requests/fields.js';
import { base64urlField, jwtField, runIdsField, timeField } from './fields.js';

/** The states a run can be in. */
export const RUN_STATUSES = ['active', 'completed', 'revoked', 'expired'] as const;

/** A run: its id, its agent, its place in the tree (parent, root, lineage), scope and life. */
export const runResponse = z
  .strictObject({
    run_id: runIdField,
    agent_id: agentIdField,
    parent_run_id: runIdField.nullable(),
    root_run_id: runIdField,
    /** The ids from the root run down to this one (its own id last). */
    lineage: runIdsField,
    scope: z.array(z.string()),
    created_at: timeField,
    expires_at: timeField,
  })
  .meta({ id: 'Run' });

/** `/runs/spawn` and `/auth/exchange` (201): the new run and its run token (an ES256 JWT). */
export const runsSpawnResponse = runResponse.extend({ token: jwtField }).meta({ id: 'SpawnedRun' });

/** `/runs/complete`: the run and every run of its subtree whose state changed. */
export const runsCompleteResponse = z
  .strictObject({ run_id: runIdField, status: z.literal('completed'), ended: runIdsField })
  .meta({ id: 'CompletedRun' });

/** `/runs/revoke`: the run and every run of its subtree whose state changed. */
export const runsRevokeResponse = z
  .strictObject({ run_id: runIdField, revoked: runIdsField })
  .meta({ id: 'RevokedRun' });

/** `/runs/token` (201): a run token of the calling run for another audience. */
export const runsTokenResponse = z
  .strictObject({
    token: jwtField,
    expires_at: timeField,
  })
  .meta({ id: 'RunToken' });

/** `GET /.well-known/agentpack-agent-identity/<run_id>`: a run's public key and live status. */
export const runIdentityResponse = z
  .strictObject({
    run_id: runIdField,
    agent_id: agentIdField,
    status: z.enum(RUN_STATUSES),
    public_key: z.strictObject({
      kty: z.literal('OKP'),
      crv: z.literal('Ed25519'),
      x: base64urlField,
    }),
    root_run_id: runIdField,
    expires_at: timeField,
  })
  .meta({ id: 'RunIdentity' });

/** A delegation: `/delegate` (201). */
export const delegationResponse = z
  .strictObject({
    delegation_id: delegationIdField,
    from_agent: agentIdField,
    to_agent: agentIdField,
    scope: z.array(z.string()),
    created_at: timeField,
    expires_at: timeField,
  })
  .meta({ id: 'Delegation' });

/** `/delegate/revoke`: revoking twice answers the first `revoked_at`. */
export const delegateRevokeResponse = z
  .strictObject({ delegation_id: delegationIdField, revoked_at: timeField })
  .meta({ id: 'RevokedDelegation' });
