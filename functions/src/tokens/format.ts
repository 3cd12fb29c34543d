/**
 * The capability token's wire format, shared by the signer (operator tooling) and the verifier
 * (the service): a compact JWS whose header is `{"alg":"EdDSA","typ":"agentpack-cap+jwt","kid":...}`
 * and whose payload is the {@link CapabilityClaims} set. Ed25519 only: one algorithm means no
 * algorithm negotiation, so no algorithm confusion.
 */

/** The only `alg` we sign with or accept (RFC 8037: EdDSA over Ed25519). */
export const TOKEN_ALG = 'EdDSA';

/** The explicit type (RFC 8725 §3.11): a capability token cannot pass for another JWT. */
export const TOKEN_TYP = 'agentpack-cap+jwt';

/** The longest token (in characters) the verifier looks at; anything longer is refused unread. */
export const MAX_TOKEN_LENGTH = 8192;

/** The longest `jti` accepted: it lands in the token ledger and in audit rows. */
export const MAX_JTI_LENGTH = 128;

/** Default for `AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`. */
export const DEFAULT_MAX_TTL_SECONDS = 900;

/**
 * The ceiling for any token lifetime, and so for `AGENTPACK_CAPABILITY_MAX_TTL_SECONDS`: a
 * capability token is checked without any read, so it can only end by expiring; a day is the
 * most we let a leaked one live.
 */
export const MAX_TTL_CEILING_SECONDS = 86_400;

/** The verified claims of a capability token (RFC 7519 names; `scope` is our list). */
export interface CapabilityClaims {
  iss: string;
  aud: string | string[];
  /** The agent id the token acts for. */
  sub: string;
  /** RPC names, each optionally narrowed to one resource (see core/scope.ts). */
  scope: string[];
  /** Issued at, seconds since the Unix epoch. */
  iat: number;
  /** Expiry, seconds since the Unix epoch. */
  exp: number;
  /** The token's unique id, as registered in the ledger. */
  jti: string;
  /** Not before, seconds since the Unix epoch. */
  nbf?: number;
}

/** An Ed25519 public key as a JWK (RFC 8037), as published in the well-known document. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** An Ed25519 private key as a JWK: the public members plus the 32-byte seed `d`. */
export interface PrivateJwk extends PublicJwk {
  d: string;
}

/**
 * Decodes `text` as canonical unpadded base64url, or returns null. Node's decoder is lenient
 * (it skips unknown characters, accepts padding, the `+/` alphabet and non-zero trailing bits),
 * so the bytes are re-encoded and compared: exactly one spelling of each byte string passes,
 * which keeps a token from having several spellings with the same signature.
 */
export function decodeBase64Url(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

/** Encodes UTF-8 JSON of `value` as unpadded base64url. */
export function encodeJsonSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
