/**
 * The online signing port: the one key the service signs its own tokens with (run tokens),
 * never the offline capability key. ES256 (ECDSA P-256 with SHA-256). In production the private
 * key is a Cloud KMS CryptoKeyVersion (adapters/kms-signer.ts); locally and on emulators a key
 * file or a configured JWK (adapters/local-signer.ts). The private key is never in the store.
 */

/** An ES256 public key as published at `/.well-known/jwks.json` (RFC 7517/7518). */
export interface EcPublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  /** The RFC 7638 thumbprint of the key ({@link ecThumbprint}). */
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

export interface TokenSigner {
  /** The `kid` of the key that {@link sign} signs with now (it goes into the JWS header). */
  signingKid(): Promise<string>;
  /**
   * Signs `data` (the JWS signing input) with ES256 under the key named `kid`, which must be
   * the current signing key. Answers the JWS signature: raw `r ‖ s`, 64 bytes.
   */
  sign(kid: string, data: Buffer): Promise<Buffer>;
  /**
   * Every public key to publish: the signing key, a next key published before it signs, and
   * a previous key still published while tokens it signed may be unexpired.
   */
  publishedKeys(): Promise<EcPublicJwk[]>;
  /** Releases connections (the KMS client); idempotent. */
  close(): Promise<void>;
}
