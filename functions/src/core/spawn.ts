/**
 * Spawning a run: by an agent-bound caller (`/runs/spawn`: a device key, a token, or a parent
 * run for a child) or by a federated workload (`/auth/exchange`). One function makes every
 * run, so the checks hold for all: the scope within the spawner's rights, the life within
 * `runs.max_ttl_seconds` and what made it (one clamp), the depth, the live-run cap, a fresh
 * key; then the run token, signed outside the transaction.
 */
import { randomBytes } from 'node:crypto';
import {
  decodeRawKey,
  parseScopeEntry,
  RESOURCE_RPCS,
  scopeAllows,
  signingKeyProblem,
  type RunView,
} from '@agentpack-identity/protocol';
import type { AuditActor } from '../ports/audit-event.js';
import { rfc3339 } from '../ports/clock.js';
import type { RunDoc } from '../ports/store.js';
import { actorOf } from './audit.js';
import type { CoreDeps } from './deps.js';
import { ApiError } from './errors.js';
import { generateRunId, listKey } from './ids.js';
import { checkLiveCap } from './live-caps.js';
import { clampToMaker, credentialScope, type AgentPrincipal } from './principal.js';
import { endedRun } from './run-tree.js';
import { mintRunToken, type RunTokenDeps } from './run-tokens.js';
import { RUN_RPCS, runView } from './runs.js';
import { readSetting } from './settings.js';

/**
 * Who makes a run: an agent-bound caller (a device key, a token, a parent run), or a workload
 * that exchanged a subject token for a role (`/auth/exchange`): the role's agent, limited to
 * the role's scope, never past the subject token's expiry.
 */
export type Spawner = AgentPrincipal | FederatedSpawner;

/** A workload authenticated by a subject token of a trusted issuer, acting under a role. */
export interface FederatedSpawner {
  kind: 'federated';
  agent_id: string;
  role: string;
  issuer: string;
  /** The subject token's `sub`. */
  subject: string;
  scope: readonly string[];
  /** The role's `updated_at`: a later change of the role ends the runs made before it. */
  role_version: string;
  /** The subject token's `exp`, in milliseconds since the epoch. */
  exp_ms: number;
  delegation?: undefined;
}

/**
 * Checks a run scope against the grammar and, when `own` is given, against the rights of
 * whoever makes the run. Answers the scope without repeats.
 */
export function checkRunScope(scope: readonly string[], own: readonly string[] | null): string[] {
  const out = new Set<string>();
  scope.forEach((text, index) => {
    const entry = parseScopeEntry(text);
    const bad = (reason: string): never => {
      throw new ApiError('invalid_argument', `scope[${index}]: ${reason}`, {
        field: 'scope',
        index,
      });
    };
    if (entry === null) bad('not of the form rpc or rpc:resource');
    else if (!RUN_RPCS.includes(entry.rpc)) bad(`${entry.rpc} cannot be granted to a run`);
    else if (entry.resource !== null && !(RESOURCE_RPCS as readonly string[]).includes(entry.rpc)) {
      bad(`${entry.rpc} does not take a resource`);
    } else if (own !== null && !scopeAllows(own, entry.rpc, entry.resource)) {
      throw new ApiError(
        'permission_denied',
        `scope[${index}] is wider than the spawner's rights`,
        {
          index,
        },
      );
    }
    out.add(text);
  });
  return [...out];
}

/** The audit actor of a spawner. */
function spawnerActor(spawner: Spawner): AuditActor {
  if (spawner.kind !== 'federated') return actorOf(spawner);
  return {
    kind: 'federated',
    agent_id: spawner.agent_id,
    role: spawner.role,
    issuer: spawner.issuer,
    subject: spawner.subject,
  };
}

export interface SpawnInput {
  task: string;
  scope: string[];
  ttl_seconds: number;
  public_key: string;
  /** The `aud` of the run token; default: the service's issuer URL. */
  audience?: string | undefined;
}

/** A new run as `/runs/spawn` and `/auth/exchange` answer it: the run and its token. */
export type SpawnedRun = RunView & { token: string };

/**
 * Spawns a run for the spawner's agent (a child when the spawner is a run), then signs its run
 * token. The token is signed after the run's transaction (a KMS call never holds one open); if
 * signing fails, the run just made is revoked before the error is answered, so no run is left
 * behind that its caller never learnt of.
 */
export async function spawnRun(
  deps: CoreDeps & RunTokenDeps,
  spawner: Spawner,
  input: SpawnInput,
): Promise<SpawnedRun> {
  const raw = decodeRawKey(input.public_key);
  const problem = raw === null ? 'must be 32 bytes as unpadded base64url' : signingKeyProblem(raw);
  if (problem !== null) {
    throw new ApiError('invalid_argument', `public_key: ${problem}`, { field: 'public_key' });
  }
  const scope = checkRunScope(
    input.scope,
    spawner.kind === 'federated' ? spawner.scope : credentialScope(spawner),
  );
  const actor = spawnerActor(spawner);
  // The run token's id, chosen first so the spawn's audit event names it.
  const jti = randomBytes(16).toString('base64url');
  const doc = await deps.store.transact(async (tx) => {
    const maxTtl = await readSetting(tx, 'runs.max_ttl_seconds');
    const maxDepth = await readSetting(tx, 'runs.max_depth');
    const agent = await tx.get('agents', spawner.agent_id);
    if (agent === null) {
      if (spawner.kind === 'federated') throw agentRefused();
      throw new ApiError('not_found', 'no such agent', { agent_id: spawner.agent_id });
    }
    const parent = spawner.kind === 'run' ? await tx.get('runs', spawner.run_id) : null;
    const [sameKey] = await tx.find('runs', 'public_key', input.public_key, 1);
    const nowMs = deps.clock.now();
    if (spawner.kind === 'federated' && (agent.disabled || (agent.retired_at ?? null) !== null)) {
      throw agentRefused();
    }
    await checkLiveCap(tx, 'runs', agent.agent_id, nowMs);
    if (input.ttl_seconds > maxTtl) {
      throw new ApiError('invalid_argument', 'ttl_seconds is above the maximum', {
        field: 'ttl_seconds',
        max_ttl_seconds: maxTtl,
      });
    }
    if (agent.disabled) throw new ApiError('permission_denied', 'the agent is disabled');
    if (sameKey !== undefined) {
      throw new ApiError(
        'already_exists',
        'this public key belongs to another run: generate a fresh key per run',
      );
    }
    if (spawner.kind === 'run' && (parent === null || parent.ended !== null))
      throw new ApiError('unauthenticated', 'the parent run has ended');
    const lineage = parent === null ? [] : [...parent.lineage];
    if (lineage.length + 1 > maxDepth) {
      throw new ApiError('failed_precondition', 'the run tree is at its maximum depth', {
        max_depth: maxDepth,
      });
    }
    const runId = generateRunId();
    // Never past what made it: a token's exp, a device key's or the parent's end, the subject
    // token's exp.
    const wantedMs = nowMs + input.ttl_seconds * 1000;
    const expiresMs =
      spawner.kind === 'federated'
        ? Math.min(wantedMs, spawner.exp_ms)
        : clampToMaker(spawner, wantedMs)!;
    const created: RunDoc = {
      run_id: runId,
      agent_id: agent.agent_id,
      parent_run_id: parent?.run_id ?? null,
      root_run_id: parent?.root_run_id ?? runId,
      lineage: [...lineage, runId],
      task: input.task,
      scope,
      public_key: input.public_key,
      created_at: rfc3339(nowMs),
      list_key: listKey(rfc3339(nowMs), runId),
      expires_at: rfc3339(expiresMs),
      ended: null,
      ended_at: null,
      live_agent_id: agent.agent_id,
      spawned_by_key_id:
        parent === null
          ? spawner.kind === 'device'
            ? spawner.key_id
            : null
          : (parent.spawned_by_key_id ?? null),
      spawned_by_role:
        parent === null
          ? spawner.kind === 'federated'
            ? { role: spawner.role, updated_at: spawner.role_version }
            : null
          : (parent.spawned_by_role ?? null),
    };
    tx.set('runs', runId, created);
    tx.audit({
      category: 'auth',
      action: spawner.kind === 'federated' ? 'auth.exchange' : 'run.spawn',
      // The new run is part of the tree: its event carries the tree's root.
      actor: { ...actor, root_run_id: created.root_run_id },
      target: { agent_id: agent.agent_id, run_id: runId },
      at: created.created_at,
      details: {
        task: input.task,
        scope: scope.join(' '),
        parent_run_id: created.parent_run_id,
        expires_at: created.expires_at,
        token_jti: jti,
      },
    });
    return created;
  });
  try {
    // Default audience: this service (its issuer URL), never the capability tokens' audience,
    // so a verifier that checks only `iss` and `aud` cannot take one for the other.
    const { token } = await mintRunToken(
      deps,
      doc,
      input.audience ?? deps.issuerUrl,
      deps.clock.now(),
      jti,
    );
    return { ...runView(doc), token };
  } catch (error) {
    await abandonRun(deps, doc, actor);
    throw error;
  }
}

/** Why a workload's exchange is refused when the role's agent cannot act. */
function agentRefused(): ApiError {
  return new ApiError('unauthenticated', "the role's agent is disabled, retired or gone", {
    reason: 'agent_disabled',
  });
}

/** Revokes a run whose token could not be signed (it has no children yet). */
async function abandonRun(deps: CoreDeps, doc: RunDoc, actor: AuditActor): Promise<void> {
  await deps.store.transact(async (tx) => {
    const current = await tx.get('runs', doc.run_id);
    if (current === null || current.ended !== null) return;
    const at = rfc3339(deps.clock.now());
    tx.set('runs', doc.run_id, endedRun(current, 'revoked', at));
    tx.audit({
      category: 'auth',
      action: 'run.revoke',
      actor: { ...actor, root_run_id: doc.root_run_id },
      target: { agent_id: doc.agent_id, run_id: doc.run_id },
      at,
      details: { cause: 'token_signing_failed', ended: 1, run_ids: doc.run_id },
    });
  });
}
