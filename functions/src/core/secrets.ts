/**
 * The secrets engine: per-agent versioned values with check-and-set, soft delete, undelete,
 * destroy and pruning. Values are sealed with {@link sealValue} before they reach the store;
 * every read, write, delete, undelete, destroy and prune is audited in the same transaction as
 * the change (names and versions, never values).
 *
 * `cas` after a delete (the trap of hashicorp/vault#15676, documented in docs/api.md):
 * `current_version` is the highest version ever written, and deleting, destroying or pruning a
 * version never lowers it. So `cas: n` must name that number even when version n is deleted,
 * and `cas: 0` ("only if absent") fails for a secret whose versions are all deleted: it still
 * exists, with its history.
 *
 * Who acts on whose secrets ({@link SecretsCall}): an agent-bound caller manages the secrets of
 * the agent it acts for; the bridge key (operators) those of the agent it names, or the shared
 * secrets (owner `_shared`), write-only: no bridge-key path reads a value (the route table
 * leaves the bridge out of `/secrets/get` and `/secrets/resolve`). Reads are always made by an
 * agent-bound caller (`secret-reads.ts`: `/secrets/get` and `/secrets/resolve`).
 */
import { SHARED_OWNER } from '@agentpack-identity/protocol';
import type { Keyring } from '../ports/keyring.js';
import { rfc3339 } from '../ports/clock.js';
import type { SecretVersionMeta, StoreReader, Tx } from '../ports/store.js';
import type { CoreDeps } from './deps.js';
import { actorOf, type AuditAction, type AuditTarget } from './audit.js';
import { recordAad, sealValue } from './envelope.js';
import { ApiError } from './errors.js';
import { actingAgentOf, type Principal } from './principal.js';
import { readSetting } from './settings.js';

/** The largest secret value: 32 KiB of UTF-8. */
export const MAX_SECRET_VALUE_BYTES = 32 * 1024;

/** The most secrets `/secrets/list` returns for one agent. */
export const MAX_LISTED_SECRETS = 1000;

export interface SecretsDeps extends CoreDeps {
  keyring: Keyring;
}

/** Store ids: `:` cannot occur in agent ids or secret names, so these never collide. */
export function secretId(agentId: string, name: string): string {
  return `${agentId}:${name}`;
}

export function versionId(agentId: string, name: string, version: number): string {
  return `${agentId}:${name}:${version}`;
}

/**
 * A call that manages secrets: whose (`owner`, an agent id or `_shared`) and who makes it
 * (`actor`, the audit's actor). Built by the routes with `actingAgent`: an agent-bound caller's
 * owner is always the agent it acts for ({@link actingAgentOf}); only the bridge key names
 * another owner.
 */
export interface SecretsCall {
  owner: string;
  actor: Principal;
}

/**
 * The one check of a secrets owner, before anything is written or read. Policy: the bridge key
 * provisions any agent that exists (404 otherwise) and is enabled — a disabled or retired agent
 * is acted for by nobody, as for every other credential (403) — and the shared secrets. An
 * agent-bound caller's agent was checked enabled by the auth layer on this very request, and it
 * can only ever name that agent; inside a write transaction (`inTransaction`) its agent is read
 * again, so a disable or a retire committed since authentication wins over the write (a value
 * put after a retire's shredding had passed would otherwise outlive it).
 */
async function checkOwner(
  reader: StoreReader,
  call: SecretsCall,
  inTransaction = false,
): Promise<void> {
  if (call.actor.kind !== 'bridge') {
    if (call.owner !== actingAgentOf(call.actor)) {
      throw new Error('an agent-bound caller named an owner other than its acting agent');
    }
    if (!inTransaction) return;
  }
  if (call.owner === SHARED_OWNER) return;
  const agent = await reader.get('agents', call.owner);
  if (agent === null) throw new ApiError('not_found', 'no such agent', { agent_id: call.owner });
  if (agent.disabled) {
    throw new ApiError('permission_denied', 'the agent is disabled', { agent_id: call.owner });
  }
}

/**
 * The audit target of a secret: `{agent_id, secret}` for an agent's own, `{secret:
 * "_shared:<name>"}` for a shared one (whose reader is the event's actor).
 */
export function secretTarget(owner: string, name: string, version?: number): AuditTarget {
  return {
    ...(owner === SHARED_OWNER
      ? { secret: secretId(owner, name) }
      : { agent_id: owner, secret: name }),
    ...(version === undefined ? {} : { version }),
  };
}

/** Why a version cannot be read; `details.reason` of the 404. */
export type VersionUnavailable = 'not_found' | 'deleted' | 'destroyed';

export function notFound(
  name: string,
  version: number | undefined,
  reason: VersionUnavailable,
): ApiError {
  return new ApiError('not_found', 'no such secret version', {
    name,
    ...(version === undefined ? {} : { version }),
    reason,
  });
}

function audit(
  tx: Tx,
  deps: CoreDeps,
  call: SecretsCall,
  action: AuditAction,
  name: string,
  version?: number,
): void {
  tx.audit({
    category: 'secrets',
    action,
    actor: actorOf(call.actor),
    target: secretTarget(call.owner, name, version),
    at: rfc3339(deps.clock.now()),
  });
}

/**
 * Writes a new version. `cas: 0` writes only if no version was ever written; `cas: n` only if
 * `current_version` is n; otherwise 409 `failed_precondition` with `current_version`.
 * Versions beyond `secrets.max_versions` are pruned, oldest first, in the same transaction.
 *
 * `brokered: true` marks the secret brokered (every version, from now on). Policy: the mark is
 * sticky — a put without `brokered` keeps it, and `brokered: false` on a brokered secret is 409
 * `failed_precondition` (`details.reason: "brokered"`), so nobody, not even the bridge key, can
 * open a brokered secret up to runs by rewriting it; an unbrokered secret takes another name.
 *
 * The value is sealed before the transaction (the key service is never called inside a
 * transaction that may be retried), under the version number it expects; if a concurrent
 * writer takes that number first, it is sealed again for the next one.
 */
export async function putSecret(
  deps: SecretsDeps,
  call: SecretsCall,
  input: { name: string; value: string; cas?: number | undefined; brokered?: boolean | undefined },
): Promise<{ name: string; version: number; created_at: string }> {
  if (Buffer.byteLength(input.value, 'utf8') > MAX_SECRET_VALUE_BYTES) {
    throw new ApiError('invalid_argument', `value is larger than ${MAX_SECRET_VALUE_BYTES} bytes`, {
      field: 'value',
      max_bytes: MAX_SECRET_VALUE_BYTES,
    });
  }
  const agentId = call.owner;
  const id = secretId(agentId, input.name);
  const seal = (version: number) =>
    sealValue(deps.keyring, input.value, recordAad(agentId, input.name, version));
  const checkCas = (current: number) => {
    if (input.cas !== undefined && input.cas !== current) {
      throw new ApiError('failed_precondition', 'cas does not match the current version', {
        current_version: current,
      });
    }
  };

  const checkBrokered = (meta: { brokered?: boolean } | null) => {
    // Policy: a brokered secret (or one being marked so) is written only by the bridge key
    // (operators) or one of the agent's own device keys, undelegated — never by a run, a token
    // or a delegation: the command the broker serves could otherwise swap in a key of its own
    // and have every later exec send its requests to the wrong account.
    const marked = meta?.brokered === true || input.brokered === true;
    const actor = call.actor;
    const mayWrite =
      actor.kind === 'bridge' || (actor.kind === 'device' && actor.delegation === undefined);
    if (marked && !mayWrite) {
      throw new ApiError(
        'permission_denied',
        "a brokered secret is written only by the bridge key or an enrolled device's own key",
        { name: input.name, reason: 'brokered' },
      );
    }
    if (meta?.brokered === true && input.brokered === false) {
      throw new ApiError(
        'failed_precondition',
        'the secret is brokered, and that mark is for good: put it without brokered: false, or use another name',
        { name: input.name, reason: 'brokered' },
      );
    }
  };

  await checkOwner(deps.store, call); // fail fast, before any call to the key service
  const before = await deps.store.get('secrets', id);
  checkCas(before?.current_version ?? 0);
  checkBrokered(before);
  let version = (before?.current_version ?? 0) + 1;
  let sealed = await seal(version);
  type Outcome =
    { retryWith: number } | { done: { name: string; version: number; created_at: string } };
  for (;;) {
    const outcome = await deps.store.transact(async (tx): Promise<Outcome> => {
      await checkOwner(tx, call, true); // again in the transaction: a disable in between wins
      const meta = await tx.get('secrets', id);
      const maxVersions = await readSetting(tx, 'secrets.max_versions');
      const current = meta?.current_version ?? 0;
      checkCas(current);
      checkBrokered(meta);
      if (current + 1 !== version) return { retryWith: current + 1 };
      const at = rfc3339(deps.clock.now());
      const kept: SecretVersionMeta[] = [
        ...(meta?.versions ?? []),
        { version, created_at: at, deleted_at: null, destroyed: false },
      ];
      const pruned = kept.splice(0, Math.max(0, kept.length - maxVersions));
      tx.set('secret_versions', versionId(agentId, input.name, version), {
        agent_id: agentId,
        name: input.name,
        version,
        created_at: at,
        ...sealed,
      });
      tx.set('secrets', id, {
        agent_id: agentId,
        name: input.name,
        current_version: version,
        created_at: meta?.created_at ?? at,
        updated_at: at,
        versions: kept,
        // A shared secret keeps its grants across writes; a brokered one its mark, for good.
        ...(meta?.readers === undefined ? {} : { readers: meta.readers }),
        ...(meta?.brokered === true || input.brokered === true ? { brokered: true } : {}),
      });
      audit(tx, deps, call, 'secret.put', input.name, version);
      for (const old of pruned) {
        if (!old.destroyed)
          tx.delete('secret_versions', versionId(agentId, input.name, old.version));
        audit(tx, deps, call, 'secret.prune', input.name, old.version);
      }
      return { done: { name: input.name, version, created_at: at } };
    });
    if ('done' in outcome) return outcome.done;
    version = outcome.retryWith;
    sealed = await seal(version);
  }
}

/** An agent's secrets: names and metadata, never values, sorted by name. */
export async function listSecrets(
  deps: CoreDeps,
  call: SecretsCall,
): Promise<{
  secrets: Array<{
    name: string;
    current_version: number;
    created_at: string;
    updated_at: string;
    brokered: boolean;
  }>;
}> {
  await checkOwner(deps.store, call);
  const agentId = call.owner;
  const found = await deps.store.find('secrets', 'agent_id', agentId, MAX_LISTED_SECRETS);
  const secrets = found
    .map(({ doc }) => ({
      name: doc.name,
      current_version: doc.current_version,
      created_at: doc.created_at,
      updated_at: doc.updated_at,
      brokered: doc.brokered === true,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { secrets };
}

/**
 * One secret's metadata: every kept version's state and whether it is `brokered`, never a
 * value; for a shared secret (only the bridge key manages those) also its `readers`.
 */
export async function secretMetadata(
  deps: CoreDeps,
  call: SecretsCall,
  name: string,
): Promise<{
  name: string;
  current_version: number;
  max_versions: number;
  created_at: string;
  updated_at: string;
  versions: SecretVersionMeta[];
  brokered: boolean;
  readers?: string[];
}> {
  await checkOwner(deps.store, call);
  const meta = await deps.store.get('secrets', secretId(call.owner, name));
  if (meta === null) throw new ApiError('not_found', 'no such secret', { name });
  return {
    name,
    current_version: meta.current_version,
    max_versions: await readSetting(deps.store, 'secrets.max_versions'),
    created_at: meta.created_at,
    updated_at: meta.updated_at,
    versions: meta.versions.map((v) => ({ ...v })),
    brokered: meta.brokered === true,
    ...(call.owner === SHARED_OWNER ? { readers: [...(meta.readers ?? [])] } : {}),
  };
}

type VersionChange = 'delete' | 'undelete' | 'destroy';

/**
 * Deletes (soft), undeletes or destroys versions (default for delete and undelete: the current
 * one). All named versions must exist (never written or pruned: 404); undeleting a destroyed
 * version is 409. Already in the asked state: unchanged, not audited again. Destroy removes the
 * ciphertext and its wrapped key for good.
 */
export async function changeVersions(
  deps: CoreDeps,
  call: SecretsCall,
  change: VersionChange,
  input: { name: string; versions?: number[] | undefined },
): Promise<{ name: string; versions: number[] }> {
  const agentId = call.owner;
  const id = secretId(agentId, input.name);
  return deps.store.transact(async (tx) => {
    await checkOwner(tx, call, true);
    const meta = await tx.get('secrets', id);
    if (meta === null) throw new ApiError('not_found', 'no such secret', { name: input.name });
    const wanted = [...new Set(input.versions ?? [meta.current_version])].sort((a, b) => a - b);
    const at = rfc3339(deps.clock.now());
    const versions = meta.versions.map((v) => ({ ...v }));
    const changed: number[] = [];
    for (const number of wanted) {
      const entry = versions.find((v) => v.version === number);
      if (entry === undefined) throw notFound(input.name, number, 'not_found');
      if (change === 'undelete' && entry.destroyed) {
        throw new ApiError('failed_precondition', 'a destroyed version cannot be undeleted', {
          version: number,
        });
      }
      const alreadyDone =
        change === 'delete'
          ? entry.deleted_at !== null || entry.destroyed
          : change === 'undelete'
            ? entry.deleted_at === null
            : entry.destroyed;
      if (alreadyDone) continue;
      if (change === 'delete') entry.deleted_at = at;
      if (change === 'undelete') entry.deleted_at = null;
      if (change === 'destroy') {
        entry.destroyed = true;
        entry.deleted_at ??= at;
        tx.delete('secret_versions', versionId(agentId, input.name, number));
      }
      changed.push(number);
    }
    if (changed.length > 0) {
      tx.set('secrets', id, { ...meta, updated_at: at, versions });
      for (const number of changed) audit(tx, deps, call, `secret.${change}`, input.name, number);
    }
    return { name: input.name, versions: wanted };
  });
}
