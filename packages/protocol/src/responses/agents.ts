/** Answers of the agent routes. */
import { z } from 'zod';
import { agentIdField } from '../requests/fields.js';
import { countField, timeField } from './fields.js';

/**
 * An agent: `/agents/create` (201), `/agents/get`, `/agents/disable`, `/agents/enable`, and
 * each item of `/agents/list`. `retired_at` only on a retired agent (which is always disabled).
 */
export const agentResponse = z
  .strictObject({
    agent_id: agentIdField,
    display_name: z.string(),
    disabled: z.boolean(),
    created_at: timeField,
    retired_at: timeField.optional(),
  })
  .meta({ id: 'Agent' });

/** `/agents/retire`: the counts are cumulative over every call of the retire. */
export const agentsRetireResponse = z
  .strictObject({
    agent_id: agentIdField,
    retired_at: timeField,
    revoked: z.strictObject({
      device_keys: countField,
      delegations: countField,
      runs: countField,
    }),
    destroyed_versions: countField,
  })
  .meta({ id: 'AgentRetirement' });
