/**
 * Reading secrets: find the version a read names (its own, or a shared secret the agent is
 * granted), record the read in the audit, then decrypt. Used by `/secrets/get` and
 * `/secrets/resolve`; every read is made by an agent-bound caller (the bridge key never reads).
 * A brokered secret is found only for a reader that may read it ({@link mayReadBrokered}).
 */
import { SHARED_OWNER } from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { SecretDoc, SecretVersionDoc, StoreReader } from '../ports/store.js';
import { actorOf } from './audit.js';
import { openValue, recordAad, type SealedValue } from './envelope.js';
import { actingAgentOf, type AgentPrincipal } from './principal.js';
import { ApiError } from './errors.js';
import {
  BROKERED_MESSAGE,
  chooseDelivery,
  deliver,
  mayReadBrokered,
  type Delivery,
} from './sealed-delivery.js';
import {
  notFound,
  secretId,
  secretTarget,
  versionId,
  type SecretsDeps,
  type VersionUnavailable,
} from './secrets.js';

function unavailable(
  meta: SecretDoc | null,
  version: number | undefined,
): VersionUnavailable | null {
  if (meta === null || version === undefined) return 'not_found';
  const entry = meta.versions.find((v) => v.version === version);
  if (entry === undefined) return 'not_found';
  if (entry.destroyed) return 'destroyed';
  if (entry.deleted_at !== null) return 'deleted';
  return null;
}

function sealedOf(doc: SecretVersionDoc): SealedValue {
  return {
    ciphertext: doc.ciphertext,
    iv: doc.iv,
    tag: doc.tag,
    wrapped_key: doc.wrapped_key,
    kek_ref: doc.kek_ref,
  };
}

/**
 * Reads a version (default: the current one) and decrypts it, for the agent the call acts for:
 * its own secret, or with `owner: "_shared"` the shared secret of that name when the agent is
 * granted it (not granted reads exactly as not found). A version that was never written, was
 * pruned, is deleted or destroyed: 404 with `details.reason`.
 */
export async function getSecret(
  deps: SecretsDeps,
  principal: AgentPrincipal,
  input: {
    name: string;
    version?: number | undefined;
    seal?: boolean | undefined;
    owner?: typeof SHARED_OWNER | undefined;
  },
): Promise<
  { name: string; version: number; created_at: string; owner?: typeof SHARED_OWNER } & (
    { value: string } | { sealed: string }
  )
> {
  const delivery = await chooseDelivery(deps.store, principal, input.seal === true);
  const owner = input.owner ?? actingAgentOf(principal);
  const found = await locateVersion(
    deps.store,
    { principal, delivery },
    { agent_id: owner, name: input.name, version: input.version },
  );
  if ('reason' in found) {
    if (found.reason === 'brokered') {
      throw new ApiError('permission_denied', BROKERED_MESSAGE, {
        name: input.name,
        reason: 'brokered',
      });
    }
    throw notFound(input.name, found.version, found.reason);
  }
  // Reads change nothing, so they need no write transaction: committed state, then the audit.
  const [resolved] = await deliverVersions(deps, principal, 'secret.get', [found.doc]);
  return {
    name: input.name,
    ...(owner === SHARED_OWNER ? { owner: SHARED_OWNER } : {}),
    version: resolved!.version,
    ...deliver(delivery, resolved!.value),
    created_at: resolved!.created_at,
  };
}

/** One secret to read: by owner (an agent id, or `_shared`) and name, at a version or the current one. */
export interface SecretRead {
  agent_id: string;
  name: string;
  version?: number | undefined;
}

/** Who reads, and how the values will leave (chosen before anything is read). */
export interface Reading {
  principal: AgentPrincipal;
  delivery: Delivery;
}

/**
 * The version a read names, found readable; or why it cannot be read: unavailable (404), or
 * `brokered` (403: the secret is brokered and this reading may not read it).
 */
export type LocatedVersion =
  | { doc: SecretVersionDoc }
  | { reason: VersionUnavailable | 'brokered'; version: number | undefined };

/**
 * Finds the version a read names, as seen by the agent the call acts for, from committed state;
 * reads nothing else and records nothing. Policy (shared secrets): a shared secret exists for
 * an agent only while the agent is among its `readers` — every read of one goes through here,
 * so not granted and not found are one and the same answer, and nobody learns that a shared
 * secret exists, or its state, without a grant. Policy (brokered secrets): every read of a
 * secret goes through here, where its metadata meets the delivery chosen for the read, so this
 * is where {@link mayReadBrokered} is applied — to an agent's own secret and to a granted
 * shared one alike, before any version is looked at (a refused reading reads no version and
 * audits nothing). Authorization by scope is the caller's job.
 */
export async function locateVersion(
  reader: StoreReader,
  reading: Reading,
  read: SecretRead,
): Promise<LocatedVersion> {
  const stored = await reader.get('secrets', secretId(read.agent_id, read.name));
  const readerAgent = actingAgentOf(reading.principal);
  const granted = read.agent_id !== SHARED_OWNER || (stored?.readers ?? []).includes(readerAgent);
  const meta = granted ? stored : null;
  if (meta?.brokered === true && !mayReadBrokered(reading.principal, reading.delivery)) {
    return { reason: 'brokered', version: read.version };
  }
  const version = read.version ?? meta?.current_version;
  const reason = unavailable(meta, version);
  const doc =
    reason === null
      ? await reader.get('secret_versions', versionId(read.agent_id, read.name, version!))
      : null;
  // A version destroyed or pruned between the two reads is simply gone: not_found.
  if (doc === null) return { reason: reason ?? 'not_found', version: read.version ?? version };
  return { doc };
}

/**
 * Records a read of each version in the audit (the reading principal as actor), then decrypts
 * them. Fail closed: no value leaves unless its audit row is committed.
 */
export async function deliverVersions(
  deps: SecretsDeps,
  principal: AgentPrincipal,
  action: 'secret.get' | 'secret.resolve',
  docs: readonly SecretVersionDoc[],
): Promise<Array<{ version: number; value: string; created_at: string }>> {
  const at = rfc3339(deps.clock.now());
  await deps.store.appendAudit(
    docs.map((doc) => ({
      category: 'secrets',
      action,
      actor: actorOf(principal),
      target: secretTarget(doc.agent_id, doc.name, doc.version),
      at,
    })),
  );
  return Promise.all(
    docs.map(async (doc) => ({
      version: doc.version,
      value: await openValue(
        deps.keyring,
        sealedOf(doc),
        recordAad(doc.agent_id, doc.name, doc.version),
      ),
      created_at: doc.created_at,
    })),
  );
}
