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
