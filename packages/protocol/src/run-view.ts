/** A run as the API shows it (`/runs/spawn` answers it), and the states a run can be in. */

export type RunStatus = 'active' | 'completed' | 'revoked' | 'expired';

/** A run: its id, its agent, its place in the tree (parent, root, lineage), scope and life. */
export interface RunView {
  run_id: string;
  agent_id: string;
  parent_run_id: string | null;
  root_run_id: string;
  /** The ids from the root run down to this one (its own id last). */
  lineage: string[];
  scope: string[];
  created_at: string;
  expires_at: string;
}
