/** Requests of the secret routes. */
import { z } from 'zod';
import { SECRET_OWNER_PATTERN, SHARED_OWNER } from '../grammar.js';
import { agentIdField, secretNameField, versionField, versionsField } from './fields.js';

/**
 * Whose secrets a bridge-key call manages: an agent id, or `_shared` (the project-wide shared
 * secrets). Agent-bound callers never choose (their `agent_id` is dropped before the schema).
 */
export const secretOwnerField = z
  .string()
  .regex(
    SECRET_OWNER_PATTERN,
    `agent_id must match ^[a-z0-9][a-z0-9_-]{2,62}$ or be ${SHARED_OWNER}`,
  );

/**
 * `cas`: the version the caller last saw (0: the secret must not exist yet). `brokered: true`
 * marks the secret brokered (readable only sealed, by an enrolled device's own key) for good:
 * left out keeps the mark, `false` on a brokered secret is 409.
 */
export const secretsPutRequest = z.strictObject({
  agent_id: secretOwnerField.optional(),
  name: secretNameField,
  value: z.string(),
  cas: z.number().int().nonnegative().optional(),
  brokered: z.boolean().optional(),
});

/** `owner: "_shared"` reads a shared secret granted to the agent the call acts for. */
export const secretsGetRequest = z.strictObject({
  name: secretNameField,
  version: versionField.optional(),
  seal: z.boolean().optional(),
  owner: z.literal(SHARED_OWNER, `owner must be ${SHARED_OWNER} (or left out)`).optional(),
});

export const secretsListRequest = z.strictObject({ agent_id: secretOwnerField.optional() });

export const secretsMetadataRequest = z.strictObject({
  agent_id: secretOwnerField.optional(),
  name: secretNameField,
});

/** `/secrets/delete` and `/secrets/undelete`: default, the current version. */
export const secretsChangeRequest = z.strictObject({
  agent_id: secretOwnerField.optional(),
  name: secretNameField,
  versions: versionsField.optional(),
});

/** `/secrets/destroy`: permanent, so the versions are named. */
export const secretsDestroyRequest = z.strictObject({
  agent_id: secretOwnerField.optional(),
  name: secretNameField,
  versions: versionsField,
});

/**
 * `fallback: "shared"`: a ref to the caller's own secret with no readable current version
 * resolves from the granted shared secret of the same name instead.
 */
export const secretsResolveRequest = z.strictObject({
  refs: z.array(z.string().max(300)).min(1).max(100),
  seal: z.boolean().optional(),
  fallback: z.literal('shared', 'fallback must be "shared" (or left out)').optional(),
});

/** The most agents one `/secrets/grant` or `/secrets/ungrant` names. */
export const MAX_GRANT_AGENTS = 100;

/** `/secrets/grant` and `/secrets/ungrant`: which agents may read the shared secret `name`. */
export const secretsGrantRequest = z.strictObject({
  name: secretNameField,
  agents: z
    .array(agentIdField)
    .min(1, 'agents must name at least one agent')
    .max(MAX_GRANT_AGENTS, `agents must name at most ${MAX_GRANT_AGENTS} agents`),
});
