/**
 * Secrets, first cut: versioned values per agent, check-and-set, read by version. Values are
 * sealed with {@link sealValue} before they reach the store, and every put and get is audited
 * in the same transaction (names and versions, never values).
 */
import type { Keyring } from '../ports/keyring.js';
import { rfc3339 } from '../ports/clock.js';
import type { SecretVersionDoc } from '../ports/store.js';
import type { CoreDeps } from './agents.js';
import { actorOf } from './audit.js';
import { openValue, recordAad, sealValue } from './envelope.js';
import { ApiError } from './errors.js';
import { actingAgentOf, type AgentPrincipal } from './principal.js';

/** Secret names: 1–128 characters of [A-Za-z0-9_.-], starting with a letter or digit. */
export const SECRET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The largest secret value: 32 KiB of UTF-8. */
export const MAX_SECRET_VALUE_BYTES = 32 * 1024;

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
 * Writes a new version. `cas: 0` writes only if the secret has no version yet; `cas: n` only
 * if the current version is n; otherwise 409 `failed_precondition` with `current_version`.
 * The value is encrypted before the transaction, under the version number it expects; if a
 * concurrent writer takes that number first, the transaction re-encrypts for the next one.
 */
export async function putSecret(
  deps: SecretsDeps,
  principal: AgentPrincipal,
  input: { name: string; value: string; cas?: number | undefined },
): Promise<{ name: string; version: number; created_at: string }> {
  if (Buffer.byteLength(input.value, 'utf8') > MAX_SECRET_VALUE_BYTES) {
    throw new ApiError('invalid_argument', `value is larger than ${MAX_SECRET_VALUE_BYTES} bytes`, {
      field: 'value',
      max_bytes: MAX_SECRET_VALUE_BYTES,
    });
  }
  const agentId = actingAgentOf(principal);
  const id = secretId(agentId, input.name);
  let sealedFor: { version: number; sealed: Awaited<ReturnType<typeof sealValue>> } | null = null;
  const sealFor = async (version: number) => {
    if (sealedFor === null || sealedFor.version !== version) {
      sealedFor = {
        version,
        sealed: await sealValue(deps.keyring, input.value, recordAad(agentId, input.name, version)),
      };
    }
    return sealedFor.sealed;
  };
  // Seal outside the transaction for the likely version, so the transaction stays short.
  const before = await deps.store.get('secrets', id);
  await sealFor((before?.current_version ?? 0) + 1);
  type Outcome =
    { retryWith: number } | { done: { name: string; version: number; created_at: string } };
  for (;;) {
    const expected = sealedFor!.version;
    const outcome = await deps.store.transact(async (tx): Promise<Outcome> => {
      const meta = await tx.get('secrets', id);
      const current = meta?.current_version ?? 0;
      if (input.cas !== undefined && input.cas !== current) {
        throw new ApiError('failed_precondition', 'cas does not match the current version', {
          current_version: current,
        });
      }
      const version = current + 1;
      if (version !== expected) return { retryWith: version };
      const at = rfc3339(deps.clock.now());
      const sealed = sealedFor!.sealed;
      const doc: SecretVersionDoc = {
        agent_id: agentId,
        name: input.name,
        version,
        created_at: at,
        deleted_at: null,
        destroyed: false,
        ...sealed,
      };
      tx.set('secret_versions', versionId(agentId, input.name, version), doc);
      tx.set('secrets', id, {
        agent_id: agentId,
        name: input.name,
        current_version: version,
        created_at: meta?.created_at ?? at,
        updated_at: at,
      });
      tx.audit({
        category: 'secrets',
        action: 'secret.put',
        actor: actorOf(principal),
        target: { agent_id: agentId, secret: input.name, version },
        at,
      });
      return { done: { name: input.name, version, created_at: at } };
    });
    if ('done' in outcome) return outcome.done;
    await sealFor(outcome.retryWith);
  }
}

/** Reads a version (default: the current one) and decrypts it. Missing: 404. */
export async function getSecret(
  deps: SecretsDeps,
  principal: AgentPrincipal,
  input: { name: string; version?: number | undefined },
): Promise<{ name: string; version: number; value: string; created_at: string }> {
  const agentId = actingAgentOf(principal);
  const doc = await deps.store.transact(async (tx) => {
    const meta = await tx.get('secrets', secretId(agentId, input.name));
    const version = input.version ?? meta?.current_version;
    const found =
      meta === null || version === undefined
        ? null
        : await tx.get('secret_versions', versionId(agentId, input.name, version));
    if (found === null) {
      throw new ApiError('not_found', 'no such secret version', {
        name: input.name,
        ...(input.version === undefined ? {} : { version: input.version }),
      });
    }
    if (found.destroyed || found.deleted_at !== null) {
      throw new ApiError('not_found', 'no such secret version', {
        name: input.name,
        version: found.version,
        reason: found.destroyed ? 'destroyed' : 'deleted',
      });
    }
    tx.audit({
      category: 'secrets',
      action: 'secret.get',
      actor: actorOf(principal),
      target: { agent_id: agentId, secret: input.name, version: found.version },
      at: rfc3339(deps.clock.now()),
    });
    return found;
  });
  const value = await openValue(
    deps.keyring,
    {
      ciphertext: doc.ciphertext!,
      iv: doc.iv!,
      tag: doc.tag!,
      wrapped_key: doc.wrapped_key!,
      kek_ref: doc.kek_ref!,
    },
    recordAad(agentId, input.name, doc.version),
  );
  return { name: input.name, version: doc.version, value, created_at: doc.created_at };
}
