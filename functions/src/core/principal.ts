/**
 * Who is calling, as proven by a verified credential. Built by the auth layer, consumed by the
 * route table's policy and by the core. Later capabilities add kinds (capability token) and a
 * delegation on top of an agent principal.
 */
export type Principal = BridgePrincipal | DevicePrincipal;

/** The project bridge key: operators and the MTA. */
export interface BridgePrincipal {
  kind: 'bridge';
  /** A stable, non-secret handle of the bridge key used (a short digest), for the audit. */
  bridge_key_id: string;
}

/** A device key: exactly one agent. */
export interface DevicePrincipal {
  kind: 'device';
  agent_id: string;
  key_id: string;
  /** The digest of the presented key: the store id of its record. */
  key_digest: string;
}

/** The kinds of credential a route can accept. */
export type CredentialKind = Principal['kind'];

export const CREDENTIAL_KINDS: readonly CredentialKind[] = ['bridge', 'device'];
