/**
 * The one check every agent-bound credential passes after it verifies: its agent exists and is
 * enabled. Read from the store on every request (no cache), so `/agents/disable` holds from the
 * next request on, for device keys, capability tokens and runs alike.
 */
import type { StoreReader } from '../ports/store.js';

/** Null when `agentId` names an enabled agent, else the refusal reason. */
export async function agentRefusal(
  reader: StoreReader,
  agentId: string,
): Promise<'agent_missing' | 'agent_disabled' | null> {
  const agent = await reader.get('agents', agentId);
  if (agent === null) return 'agent_missing';
  return agent.disabled ? 'agent_disabled' : null;
}
