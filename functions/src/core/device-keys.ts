/**
 * Device keys: issue (optionally rotating the calling key), revoke, and authenticate. A key is
 * shown once at issue and stored only as its digest; revocation, expiry and disabling take
 * effect on the very next request because authentication always reads the store.
 */
import { generateDeviceKey, isWellFormedDeviceKey } from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { DeviceKeyDoc, Tx } from '../ports/store.js';
import { requireAgent } from './agents.js';
import type { CoreDeps } from './deps.js';
import { actorOf } from './audit.js';
import { ApiError } from './errors.js';
import { generateKeyId, listKey } from './ids.js';
import { clampToMaker, type DevicePrincipal, type Principal } from './principal.js';
import { revokeRunsOf } from './runs.js';
import { readSetting } from './settings.js';

/** A freshly issued key: the only time `device_key` is ever shown. */
export interface IssuedDeviceKey {
  key_id: string;
  agent_id: string;
  device_key: string;
  label: string | null;
  created_at: string;
  expires_at: string | null;
}

export interface IssueInput {
  agent_id: string;
  label?: string | undefined;
  ttl_seconds?: number | undefined;
  /** Revoke the calling device key in the same transaction. */
  rotate?: boolean | undefined;
}

/**
 * Issues a device key for `input.agent_id`. The agent must exist and be enabled, checked inside
 * the transaction so a concurrent disable cannot slip a key through. With `rotate`, the calling
 * key must still be active inside the transaction: of two rotations of one key, one wins and
 * the other is refused with 401. A key issued by a device key never outlives it; an enrolled
 * device's key issues nothing (403 `enrolled_device`): a plain bearer key would be a downgrade
 * from its pinned keys, so an enrolled device rotates by re-enrolling with `replaces_key_id`.
 */
export async function issueDeviceKey(
  deps: CoreDeps,
  principal: Principal,
  input: IssueInput,
): Promise<IssuedDeviceKey> {
  if (input.rotate === true && principal.kind !== 'device') {
    throw new ApiError('invalid_argument', 'rotate needs a device key: it revokes the calling key');
  }
  if (principal.kind === 'device' && principal.sealing_public_key !== null) {
    throw new ApiError(
      'permission_denied',
      'an enrolled device cannot issue device keys: re-enroll with replaces_key_id to rotate',
      { reason: 'enrolled_device' },
    );
  }
  const deviceKey = generateDeviceKey();
  const digest = deps.digest('device_key', deviceKey);
  const issued = await deps.store.transact(async (tx) => {
    const maxTtl = await readSetting(tx, 'device_key.max_ttl_seconds');
    if (input.ttl_seconds !== undefined && input.ttl_seconds > maxTtl) {
      throw new ApiError('invalid_argument', 'ttl_seconds is above the maximum', {
        field: 'ttl_seconds',
        max_ttl_seconds: maxTtl,
      });
    }
    const agent = await requireAgent(tx, input.agent_id);
    const rotating = input.rotate === true && principal.kind === 'device' ? principal : null;
    if (agent.disabled) {
      throw new ApiError('permission_denied', 'the agent is disabled', {
        agent_id: agent.agent_id,
      });
    }
    const nowMs = deps.clock.now();
    const at = rfc3339(nowMs);
    // Of two rotations of one key, one wins: the other finds the key revoked.
    const calling = await liveCallingKey(tx, principal, nowMs);
    const keyId = generateKeyId();
    const doc: DeviceKeyDoc = {
      key_id: keyId,
      agent_id: agent.agent_id,
      label: input.label ?? null,
      created_at: at,
      list_key: listKey(at, keyId),
      expires_at: expiryOf(
        clampToMaker(
          principal,
          input.ttl_seconds === undefined ? null : nowMs + input.ttl_seconds * 1000,
        ),
      ),
      revoked_at: null,
      digest: 'keyed',
    };
    tx.set('device_keys', digest, doc);
    if (rotating !== null && calling !== null) {
      tx.set('device_keys', rotating.key_digest, { ...calling, revoked_at: at });
      tx.audit({
        category: 'auth',
        action: 'device_key.rotate',
        actor: actorOf(principal),
        target: { agent_id: agent.agent_id, key_id: doc.key_id },
        at,
        details: { revoked_key_id: calling.key_id },
      });
    } else {
      tx.audit({
        category: 'auth',
        action: 'device_key.issue',
        actor: actorOf(principal),
        target: { agent_id: agent.agent_id, key_id: doc.key_id },
        at,
      });
    }
    return {
      key_id: doc.key_id,
      agent_id: doc.agent_id,
      device_key: deviceKey,
      label: doc.label,
      created_at: doc.created_at,
      expires_at: doc.expires_at,
    };
  });
  // A rotation revokes the calling key: the run trees it spawned end with it, as on revoke.
  if (input.rotate === true && principal.kind === 'device') {
    await revokeRunsOf(deps, principal, {
      agent_id: issued.agent_id,
      key_id: principal.key_id,
      action: 'device_key.rotate',
    });
  }
  return issued;
}

function expiryOf(ms: number | null): string | null {
  return ms === null ? null : rfc3339(ms);
}

/** The answer of a revoke. */
export interface RevokedDeviceKey {
  key_id: string;
  agent_id: string;
  revoked_at: string;
}

/**
 * Revokes a device key by its `key_id` (default: the calling key). A device may revoke only
 * its own agent's keys: another agent's key is 404, exactly like a key that does not exist, so
 * key ids of other agents cannot be probed. Revoking a revoked key is idempotent and answers
 * the original `revoked_at` without a new audit event. Every run tree the key spawned ends with
 * it (refused from the next request by the run check, then marked by the walk; a repeated
 * revoke resumes an interrupted walk).
 */
export async function revokeDeviceKey(
  deps: CoreDeps,
  principal: Principal,
  keyId: string | undefined,
): Promise<RevokedDeviceKey> {
  if (keyId === undefined && principal.kind !== 'device') {
    throw new ApiError('invalid_argument', 'key_id is required with the bridge key');
  }
  const revoked = await deps.store.transact(async (tx) => {
    let found: { id: string; doc: DeviceKeyDoc } | null = null;
    if (keyId === undefined && principal.kind === 'device') {
      const doc = await tx.get('device_keys', principal.key_digest);
      found = doc === null ? null : { id: principal.key_digest, doc };
    } else if (keyId !== undefined) {
      found = (await tx.find('device_keys', 'key_id', keyId, 1))[0] ?? null;
    }
    if (
      found === null ||
      (principal.kind === 'device' && found.doc.agent_id !== principal.agent_id)
    ) {
      throw new ApiError(
        'not_found',
        'no such device key',
        keyId === undefined ? {} : { key_id: keyId },
      );
    }
    const { id, doc } = found;
    if (doc.revoked_at !== null) {
      return { key_id: doc.key_id, agent_id: doc.agent_id, revoked_at: doc.revoked_at };
    }
    const at = rfc3339(deps.clock.now());
    tx.set('device_keys', id, { ...doc, revoked_at: at });
    tx.audit({
      category: 'auth',
      action: 'device_key.revoke',
      actor: actorOf(principal),
      target: { agent_id: doc.agent_id, key_id: doc.key_id },
      at,
    });
    return { key_id: doc.key_id, agent_id: doc.agent_id, revoked_at: at };
  });
  await revokeRunsOf(deps, principal, {
    agent_id: revoked.agent_id,
    key_id: revoked.key_id,
    action: 'device_key.revoke',
  });
  return revoked;
}

/**
 * The calling device key's record, read again in `tx`: 401 unless it is still live at `nowMs`, so
 * a key revoked while its request was in flight makes nothing (a key, a delegation). Null when
 * the caller is not a device key.
 */
export async function liveCallingKey(
  tx: Tx,
  principal: Principal,
  nowMs: number,
): Promise<DeviceKeyDoc | null> {
  if (principal.kind !== 'device') return null;
  const calling = await tx.get('device_keys', principal.key_digest);
  if (calling === null || !isActive(calling, nowMs)) {
    throw new ApiError('unauthenticated', 'the calling device key is no longer valid');
  }
  return calling;
}

/** True when a key record is neither revoked nor expired at `nowMs`. */
export function isActive(doc: DeviceKeyDoc, nowMs: number): boolean {
  if (doc.revoked_at !== null) return false;
  return doc.expires_at === null || Date.parse(doc.expires_at) > nowMs;
}

/** Why a presented device key was refused, for the structured log. */
export type DeviceKeyRefusal = 'malformed' | 'unknown' | 'revoked' | 'expired';

/**
 * Looks up a presented device key: shape and checksum first (no store read for garbage), then
 * the record by digest, refused when revoked or expired. Reads the store every time: no cache
 * may sit between a key and its revocation. Its agent is checked by the caller (auth).
 */
export async function authenticateDeviceKey(
  deps: CoreDeps,
  presented: string,
): Promise<
  | { ok: true; principal: DevicePrincipal; doc: DeviceKeyDoc }
  | { ok: false; reason: DeviceKeyRefusal }
> {
  if (!isWellFormedDeviceKey(presented)) return { ok: false, reason: 'malformed' };
  const digest = deps.digest('device_key', presented);
  const doc = await deps.store.get('device_keys', digest);
  if (doc === null) return { ok: false, reason: 'unknown' };
  if (doc.revoked_at !== null) return { ok: false, reason: 'revoked' };
  if (!isActive(doc, deps.clock.now())) return { ok: false, reason: 'expired' };
  return {
    ok: true,
    doc,
    principal: {
      kind: 'device',
      agent_id: doc.agent_id,
      key_id: doc.key_id,
      key_digest: digest,
      sealing_public_key: doc.sealing_public_key ?? null,
      expires_at: doc.expires_at,
    },
  };
}
