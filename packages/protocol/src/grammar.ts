/**
 * The identifier and name grammars of the API, and its header names, in one place so that the
 * service's schemas, its core and the CLI agree.
 */

/** Agent ids: lowercase, 3 to 63 characters, starting with a letter or digit. */
export const AGENT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{2,62}$/;

/** Device key handles: `dk_` + 96 random bits. */
export const KEY_ID_PATTERN = /^dk_[A-Za-z0-9_-]{16}$/;

/** Run ids: `run_` + 128 random bits. */
export const RUN_ID_PATTERN = /^run_[A-Za-z0-9_-]{22}$/;

/** Delegation ids: `dg_` + 128 random bits. */
export const DELEGATION_ID_PATTERN = /^dg_[A-Za-z0-9_-]{22}$/;

/** A device fingerprint: `SHA256:` + unpadded base64url of 32 bytes. */
export const FINGERPRINT_PATTERN = /^SHA256:[A-Za-z0-9_-]{43}$/;

/** Secret names: a letter or digit, then up to 127 letters, digits, `_`, `.` or `-`. */
export const SECRET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The reserved owner of project-wide shared secrets. The agent-id grammar forbids a leading
 * underscore, so it can never name a real agent: it is accepted only where a secret's owner is
 * named (the bridge's `agent_id` on the secret-management routes, `owner` on `/secrets/get`, a
 * reference's owner), never by `/agents/create` nor anywhere an agent is meant.
 */
export const SHARED_OWNER = '_shared';

/** A secret's owner: an agent id or {@link SHARED_OWNER}. */
export const SECRET_OWNER_PATTERN = /^(?:_shared|[a-z0-9][a-z0-9_-]{2,62})$/;

/**
 * The scheme of a secret reference: `agentpack.secret://<owner>/<name>[#<version>]`, the owner
 * an agent id or `_shared`.
 */
export const SECRET_REF_PREFIX = 'agentpack.secret://';

/** A parsed secret reference; no `version` means the current one. */
export interface SecretRef {
  /** The owner: an agent id, or {@link SHARED_OWNER} for a shared secret. */
  agent_id: string;
  name: string;
  version?: number;
}

/** Parses a secret reference; null when it does not follow the grammar. */
export function parseSecretRef(ref: string): SecretRef | null {
  if (!ref.startsWith(SECRET_REF_PREFIX)) return null;
  const rest = ref.slice(SECRET_REF_PREFIX.length);
  const m = /^([^/#]+)\/([^/#]+)(?:#([1-9][0-9]{0,9}))?$/.exec(rest);
  if (m === null) return null;
  const [, owner, name, version] = m as unknown as [string, string, string, string | undefined];
  if (!SECRET_OWNER_PATTERN.test(owner) || !SECRET_NAME_PATTERN.test(name)) return null;
  return {
    agent_id: owner,
    name,
    ...(version === undefined ? {} : { version: Number(version) }),
  };
}

/**
 * Printable ASCII without spaces, 1 to 512 characters: the shape of every credential header
 * value (and of an enrollment code or a delegation id) — safe in a header and a one-line error.
 */
export const CREDENTIAL_VALUE_PATTERN = /^[\x21-\x7e]{1,512}$/;

/** Loopback host names, where plain http may carry a credential (nowhere else). */
export const LOOPBACK_HOST_PATTERN = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

/** The credential headers the service reads. */
export const CREDENTIAL_HEADERS = {
  bridge: 'x-agentpack-key',
  device: 'x-agentpack-device-key',
  bearer: 'authorization',
  delegation: 'x-agentpack-delegation',
  run: 'x-agentpack-run',
} as const;

/** Role names (workload federation): the agent-id grammar. */
export const ROLE_PATTERN = /^[a-z0-9][a-z0-9_-]{2,62}$/;

/**
 * A claim a role binds: a top-level claim name of letters, digits and `_ . : / -`, starting
 * with a letter or digit (so never a Firestore-reserved `__name__`).
 */
export const CLAIM_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/;
