/**
 * The shape of every document the store keeps, one interface per collection (the store port,
 * `store.ts`, maps collection names to these). No key material is ever a field here: presented
 * secrets are stored as digests, data keys wrapped, private keys not at all.
 */
/** An agent record: `agents/{agent_id}`. */
export interface AgentDoc {
  agent_id: string;
  display_name: string;
  disabled: boolean;
  created_at: string;
  updated_at: string;
  /** Set once, by `/agents/retire`: the agent is gone for good and its id never comes back. */
  retired_at?: string | null;
}

/**
 * A device key record: `device_keys/{key_digest}`. The document id is the digest of the key,
 * which is also the lookup index; the clear key is never stored. `key_id` is the public handle
 * for listing and revoking.
 */
export interface DeviceKeyDoc {
  key_id: string;
  agent_id: string;
  label: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  /**
   * The pinned public keys of an enrolled device (raw, base64url), fixed at enrollment and
   * never changed; absent or null for a plain bearer key from `/device/issue`.
   */
  sealing_public_key?: string | null;
  signing_public_key?: string | null;
  fingerprint?: string | null;
  /** The list order: `created_at` + `|` + `key_id` (see {@link listKey}). */
  list_key?: string;
  /**
   * `keyed`: the document id is the keyed digest of the key (core/digest.ts). Absent on rows
   * written before keyed digests: those authenticate nothing until `maintenance
   * migrate-digests` moves them.
   */
  digest?: 'keyed';
  /** When `maintenance migrate-digests` moved the row from its plain digest; absent otherwise. */
  migrated_at?: string;
}

/**
 * A device enrollment: `device_enrollments/{code_digest}`. The one-time code is stored only as
 * the digest that names the document.
 */
export interface EnrollmentDoc {
  enrollment_id: string;
  agent_id: string;
  expected_fingerprint: string | null;
  replaces_key_id: string | null;
  label: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  key_id: string | null;
  /** `keyed` as on device keys: absent on rows from before keyed digests. */
  digest?: 'keyed';
  /** As on device keys. */
  migrated_at?: string;
}

/**
 * A nonce seen in a signed request: `request_nonces/{digest of key_id and nonce}`. Kept until
 * `expires_at` (the end of the replay window); on Firestore a TTL policy deletes it after.
 */
export interface RequestNonceDoc {
  key_id: string;
  expires_at: string;
}

/** A delegation: `delegations/{delegation_id}`. */
export interface DelegationDoc {
  delegation_id: string;
  from_agent: string;
  to_agent: string;
  scope: string[];
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  /** `from_agent` while unrevoked, null once revoked: the index of an agent's live delegations. */
  live_from_agent?: string | null;
  /** The list order: `created_at` + `|` + `delegation_id`. */
  list_key?: string;
}

/** An operator tunable: `settings/{key}`. Absent means the default from the allow-list. */
export interface SettingDoc {
  key: string;
  value: number | boolean | string;
  updated_at: string;
}

/** The ledger entry of a minted capability token: `capability_tokens/{jti}`. Never the token. */
export interface CapabilityTokenDoc {
  jti: string;
  sub: string;
  scope: string[];
  iat: number;
  exp: number;
  kid: string;
  registered_at: string;
}

/** The state of one version, kept in its secret's metadata document. */
export interface SecretVersionMeta {
  version: number;
  created_at: string;
  /** Soft delete: the version reads as 404 until undeleted. */
  deleted_at: string | null;
  /** Destroyed: the ciphertext and its wrapped key are gone for good. */
  destroyed: boolean;
}

/**
 * A secret's metadata: `secrets/{agent_id}:{name}`. It is the authority on which versions
 * exist and their state. Bounded: at most `secrets.max_versions` (≤ 100) entries, pruned oldest
 * first, so it stays far from Firestore's 1 MiB limit; written once per change.
 */
export interface SecretDoc {
  agent_id: string;
  name: string;
  /** The highest version ever written (deleted, destroyed or pruned versions still count). */
  current_version: number;
  created_at: string;
  updated_at: string;
  versions: SecretVersionMeta[];
  /** Shared secrets only (owner `_shared`): the agents granted to read it. */
  readers?: string[];
  /** Brokered (sticky: no put clears it): read only sealed, by an enrolled device's own key. */
  brokered?: boolean;
}

/**
 * The sealed value of one version: `secret_versions/{agent_id}:{name}:{version}`. AES-256-GCM
 * ciphertext under a fresh data key; the data key is stored only wrapped. Deleted (the whole
 * document) when the version is destroyed or pruned.
 */
export interface SecretVersionDoc {
  agent_id: string;
  name: string;
  version: number;
  created_at: string;
  ciphertext: string;
  iv: string;
  tag: string;
  wrapped_key: string;
  /** Which key-encryption key wrapped the data key (for rewrap and rotation). */
  kek_ref: string;
}

/** How a run ended, if it did. */
export type RunEnd = 'completed' | 'revoked';

/**
 * An ephemeral run: `runs/{run_id}`. A per-spawn identity with its own Ed25519 key (public
 * half only), a scope no wider than its spawner's, a short life and its lineage.
 */
export interface RunDoc {
  run_id: string;
  agent_id: string;
  parent_run_id: string | null;
  root_run_id: string;
  /** Run ids from the root to this run (inclusive). */
  lineage: string[];
  task: string;
  scope: string[];
  /** Raw Ed25519 public key, unpadded base64url. */
  public_key: string;
  created_at: string;
  expires_at: string;
  ended: RunEnd | null;
  ended_at: string | null;
  /**
   * The device key (`key_id`) that spawned the tree's root, copied to every run of the tree;
   * null when a token spawned it. Revoking that key ends the whole tree.
   */
  spawned_by_key_id?: string | null;
  /**
   * The role (and its version, its `updated_at`) whose exchange made the tree's root, copied to
   * every run of the tree; null otherwise. Deleting or changing the role ends the whole tree.
   */
  spawned_by_role?: { role: string; updated_at: string } | null;
  /** `agent_id` while the run has not ended, null once it has: the index of live runs. */
  live_agent_id?: string | null;
  /** The list order: `created_at` + `|` + `run_id`. */
  list_key?: string;
}

/**
 * A trusted issuer of workload tokens: `issuers/{sha256 hex of issuer}` (an issuer is a URL,
 * which a document id cannot hold). Its keys are pinned inline (`jwks`) or discovered over
 * HTTPS from `<issuer>/.well-known/openid-configuration` (`jwks` null).
 */
export interface IssuerDoc {
  issuer: string;
  jwks: { keys: Record<string, unknown>[] } | null;
  created_at: string;
  updated_at: string;
}

/**
 * A role: `roles/{role}`. Which subject tokens of an issuer become a root run of which agent,
 * with which scope and life.
 */
export interface RoleDoc {
  role: string;
  issuer: string;
  audiences: string[];
  /** Claim name → accepted values (`*` matches any run of characters). */
  bound_claims: Record<string, string | string[]>;
  agent_id: string;
  scope: string[];
  ttl_seconds: number;
  created_at: string;
  updated_at: string;
}
