/**
 * The caps on what one agent holds live: runs (`runs.max_active_per_agent`) and delegations it
 * gave (`delegations.max_active_per_agent`). Each is counted inside the creating transaction by
 * its index field of live documents (set while unended or unrevoked, null after), among those
 * not yet expired; one more beyond the cap is 429 `resource_exhausted`.
 */
import { rfc3339 } from '../ports/clock.js';
import type { Tx } from '../ports/store.js';
import { ApiError } from './errors.js';
import { readSetting } from './settings.js';

const CAPS = {
  runs: { setting: 'runs.max_active_per_agent', what: 'runs' },
  delegations: { setting: 'delegations.max_active_per_agent', what: 'delegations' },
} as const;

/** 429 when `agentId` already holds its cap of live `kind` at `nowMs`. */
export async function checkLiveCap(
  tx: Tx,
  kind: keyof typeof CAPS,
  agentId: string,
  nowMs: number,
): Promise<void> {
  const { setting, what } = CAPS[kind];
  const max = await readSetting(tx, setting);
  const range = { orderBy: 'expires_at', after: rfc3339(nowMs), limit: max } as const;
  const live =
    kind === 'runs'
      ? await tx.query('runs', { ...range, where: ['live_agent_id', agentId] })
      : await tx.query('delegations', { ...range, where: ['live_from_agent', agentId] });
  if (live.length >= max) {
    throw new ApiError('resource_exhausted', `the agent has too many live ${what}`, {
      max_active_per_agent: max,
    });
  }
}
