/**
 * The key-encryption port: wraps and unwraps the per-version data keys of secrets. Locally a
 * key file in the data dir; in production a Secret Manager key (and Cloud KMS in a later
 * version). The data key never leaves the process unwrapped.
 */
export interface Keyring {
  /**
   * The reference of the key that {@link wrap} uses now (for Cloud KMS, the primary
   * CryptoKeyVersion). A version whose `kek_ref` differs is due for rewrap.
   */
  primaryRef(): Promise<string>;
  /** Wraps a data key; `aad` binds the wrapped key to its record. */
  wrap(dataKey: Buffer, aad: Buffer): Promise<{ wrapped: string; kek_ref: string }>;
  /** Unwraps a data key wrapped by {@link wrap}; throws if the key or the record does not match. */
  unwrap(wrapped: string, kekRef: string, aad: Buffer): Promise<Buffer>;
}
