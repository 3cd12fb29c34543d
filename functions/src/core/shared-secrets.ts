/**
 * Shared secrets: project-wide values under the reserved owner `_shared`, provisioned by
 * operators (the bridge key, with the secret-management routes and `agent_id: "_shared"`) and
 * read only by the agents granted them. The grants live on the shared secret's metadata
 * document (`readers`); every read of a shared secret goes through
 * {@link locateVersion}, which treats an agent not among them exactly as a secret that does
 * not exist.
 *
 * Grants are explicit and per secret: there is no wildcard and no default reader, and a grant
 * names agents that exist. They survive writes, deletes and destroys of the secret's versions.
 */
import { SHARED_OWNER } from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import { actorOf } from './audit.js';
import type { CoreDeps } from './deps.js';
import { ApiError } from './errors.js';
import type { Principal } from './principal.js';
import { secretId, secretTarget } from './secrets.js';

/**
 * The most agents one shared secret may be granted to: its readers live on one document, which
 * must stay far below Firestore's 1 MiB document limit (5000 ids of at most 63 characters).
 */
export const MAX_SHARED_READERS = 5000;

/**
 * Grants (or ungrants) the agents `agents` the reading of the shared secret `name`. The secret
 * must exist (404 `no such shared secret`); granted agents must exist (404 with `agent_id`).
 * Idempotent: an agent already in the asked state is left alone and not audited again; each
 * change is one audit event (`secret.grant` / `secret.ungrant`, target the agent and
 * `_shared:<name>`), in the same transaction. Answers the readers after the change, sorted.
 */
export async function changeGrants(
  deps: CoreDeps,
  principal: Principal,
  change: 'grant' | 'ungrant',
  input: { name: string; agents: readonly string[] },
): Promise<{ name: string; readers: string[] }> {
  const id = secretId(SHARED_OWNER, input.name);
  const wanted = [...new Set(input.agents)].sort();
  return deps.store.transact(async (tx) => {
    const meta = await tx.get('secrets', id);
    if (meta === null) {
      throw new ApiError('not_found', 'no such shared secret', { name: input.name });
    }
    const readers = new Set(meta.readers ?? []);
    const changed: string[] = [];
    for (const agentId of wanted) {
      if (change === 'grant') {
        if (readers.has(agentId)) continue;
        const agent = await tx.get('agents', agentId);
        if (agent === null) {
          throw new ApiError('not_found', 'no such agent', { agent_id: agentId });
        }
        // A retired agent is gone for good: nothing is granted to it any more.
        if (agent.retired_at !== undefined && agent.retired_at !== null) {
          throw new ApiError('failed_precondition', 'the agent is retired', {
            agent_id: agentId,
            reason: 'retired',
          });
        }
        readers.add(agentId);
      } else {
        if (!readers.delete(agentId)) continue;
      }
      changed.push(agentId);
    }
    if (readers.size > MAX_SHARED_READERS) {
      throw new ApiError(
        'resource_exhausted',
        `a shared secret can be granted to at most ${MAX_SHARED_READERS} agents`,
        { max_readers: MAX_SHARED_READERS },
      );
    }
    const sorted = [...readers].sort();
    if (changed.length > 0) {
      const at = rfc3339(deps.clock.now());
      tx.set('secrets', id, { ...meta, updated_at: at, readers: sorted });
      for (const agentId of changed) {
        tx.audit({
          category: 'secrets',
          action: change === 'grant' ? 'secret.grant' : 'secret.ungrant',
          actor: actorOf(principal),
          target: { ...secretTarget(SHARED_OWNER, input.name), agent_id: agentId },
          at,
        });
      }
    }
    return { name: input.name, readers: sorted };
  });
}
