/** Requests of the agent routes. */
import { z } from 'zod';
import { agentIdField, displayNameField } from './fields.js';

export const agentsCreateRequest = z.strictObject({
  display_name: displayNameField,
  agent_id: agentIdField.optional(),
});

/** `agent_id` names the agent for the bridge; an agent-bound caller reads its own. */
export const agentsGetRequest = z.strictObject({ agent_id: agentIdField.optional() });

/** `/agents/disable` and `/agents/enable`. */
export const agentToggleRequest = z.strictObject({ agent_id: agentIdField });

/**
 * `/agents/retire`: `confirm` must repeat `agent_id`, so that a retire (which cannot be undone)
 * never happens by a slip of one field. A reserved owner such as `_shared` is not an agent id:
 * the grammar refuses it.
 */
export const agentsRetireRequest = z
  .strictObject({ agent_id: agentIdField, confirm: agentIdField })
  .refine((r) => r.confirm === r.agent_id, {
    message: 'confirm must equal agent_id',
    path: ['confirm'],
  });
