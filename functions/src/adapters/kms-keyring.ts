/**
 * The production keyring: data keys wrapped and unwrapped by Cloud KMS (`Encrypt`/`Decrypt` on
 * a symmetric CryptoKey), through the small {@link KmsClient} interface: the three methods of
 * `@google-cloud/kms`'s `KeyManagementServiceClient` we use, so the adapter is easy to read and
 * to fake (as spire's gcpkms plugin does with its `client.go`).
 *
 * Integrity, as Google's data-integrity guidance for Cloud KMS asks: every request carries the
 * CRC32C of its plaintext or ciphertext and of its associated data; every response is checked
 * (the service says it verified our checksums, and its own checksum matches what arrived). A
 * response that fails the check is discarded and the call retried a few times; a persistent
 * mismatch is refused, never stored or used.
 *
 * Errors: the key service being unreachable, overloaded or too slow is the caller's
 * `unavailable` (503, retry later); anything else is a plain Error (a logged 500). No error
 * message ever carries key material: only method names, status codes and resource names.
 */
import type { Keyring } from '../ports/keyring.js';
import { CRYPTO_KEY_NAME } from '../config/config.js';
import { crc32c } from './crc32c.js';
import {
  IntegrityError,
  KMS_TIMEOUT_MS_DEFAULT,
  bytesOf,
  callFailure,
  checked,
  int64Of,
  openKmsClient,
  type KmsCallOptions,
  type KmsInt64,
} from './kms-calls.js';

export { KMS_TIMEOUT_MS_DEFAULT, type KmsCallOptions, type KmsInt64 };

export interface KmsEncryptRequest {
  name: string;
  plaintext: Buffer;
  additionalAuthenticatedData: Buffer;
  plaintextCrc32c: { value: number };
  additionalAuthenticatedDataCrc32c: { value: number };
}

export interface KmsEncryptResponse {
  /** The CryptoKeyVersion that encrypted. */
  name?: string | null;
  ciphertext?: Uint8Array | string | null;
  ciphertextCrc32c?: KmsInt64 | null;
  verifiedPlaintextCrc32c?: boolean | null;
  verifiedAdditionalAuthenticatedDataCrc32c?: boolean | null;
}

export interface KmsDecryptRequest {
  name: string;
  ciphertext: Buffer;
  additionalAuthenticatedData: Buffer;
  ciphertextCrc32c: { value: number };
  additionalAuthenticatedDataCrc32c: { value: number };
}

export interface KmsDecryptResponse {
  plaintext?: Uint8Array | string | null;
  plaintextCrc32c?: KmsInt64 | null;
}

export interface KmsCryptoKey {
  primary?: { name?: string | null } | null;
}

/** The subset of `KeyManagementServiceClient` the keyring uses (its promise forms). */
export interface KmsClient {
  encrypt(
    request: KmsEncryptRequest,
    options?: KmsCallOptions,
  ): Promise<[KmsEncryptResponse, ...unknown[]]>;
  decrypt(
    request: KmsDecryptRequest,
    options?: KmsCallOptions,
  ): Promise<[KmsDecryptResponse, ...unknown[]]>;
  getCryptoKey(
    request: { name: string },
    options?: KmsCallOptions,
  ): Promise<[KmsCryptoKey, ...unknown[]]>;
}

/**
 * A keyring over one Cloud KMS CryptoKey (`projects/.../cryptoKeys/K`). `wrap` encrypts under
 * the key's current primary version and records that version as `kek_ref`; `unwrap` lets KMS
 * pick the version from the ciphertext, after checking the ref belongs to this key.
 *
 * @example
 * const keyring = kmsKeyring(new KeyManagementServiceClient(), 'projects/p/locations/global/keyRings/r/cryptoKeys/k');
 */
export function kmsKeyring(
  client: KmsClient,
  cryptoKeyName: string,
  options: { timeoutMs?: number } = {},
): Keyring {
  if (!CRYPTO_KEY_NAME.test(cryptoKeyName)) {
    throw new Error(
      'the KMS key must be a CryptoKey name: projects/P/locations/L/keyRings/R/cryptoKeys/K',
    );
  }
  const versionPrefix = `${cryptoKeyName}/cryptoKeyVersions/`;
  const callOptions: KmsCallOptions = { timeout: options.timeoutMs ?? KMS_TIMEOUT_MS_DEFAULT };

  const isOurVersion = (name: string | null | undefined): name is string =>
    typeof name === 'string' &&
    name.startsWith(versionPrefix) &&
    /^\d{1,20}$/.test(name.slice(versionPrefix.length));

  return {
    async primaryRef() {
      let key: KmsCryptoKey;
      try {
        [key] = await client.getCryptoKey({ name: cryptoKeyName }, callOptions);
      } catch (error) {
        throw callFailure('GetCryptoKey', error);
      }
      const name = key.primary?.name;
      if (!isOurVersion(name)) {
        throw new Error(
          `Cloud KMS key ${cryptoKeyName} has no primary version: it must be a symmetric ENCRYPT_DECRYPT key`,
        );
      }
      return name;
    },

    async wrap(dataKey, aad) {
      const request: KmsEncryptRequest = {
        name: cryptoKeyName,
        plaintext: dataKey,
        additionalAuthenticatedData: aad,
        plaintextCrc32c: { value: crc32c(dataKey) },
        additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
      };
      return checked('Encrypt', async () => {
        let response: KmsEncryptResponse;
        try {
          [response] = await client.encrypt(request, callOptions);
        } catch (error) {
          throw callFailure('Encrypt', error);
        }
        if (response.verifiedPlaintextCrc32c !== true) {
          throw new IntegrityError('the plaintext checksum was not verified');
        }
        if (response.verifiedAdditionalAuthenticatedDataCrc32c !== true) {
          throw new IntegrityError('the associated data checksum was not verified');
        }
        const ciphertext = bytesOf(response.ciphertext);
        const sum = int64Of(response.ciphertextCrc32c);
        if (ciphertext === null || ciphertext.length === 0 || sum === null) {
          throw new IntegrityError('the ciphertext or its checksum is missing');
        }
        if (crc32c(ciphertext) !== sum) {
          throw new IntegrityError('the ciphertext does not match its checksum');
        }
        // Google's guidance: check the name to be sure the intended key encrypted.
        if (!isOurVersion(response.name)) {
          throw new Error(`Cloud KMS Encrypt answered for another key than ${cryptoKeyName}`);
        }
        return { wrapped: ciphertext.toString('base64url'), kek_ref: response.name };
      });
    },

    async unwrap(wrapped, kekRef, aad) {
      // Policy: a data key wrapped by another key (another CryptoKey, or the local keyring) is
      // refused by name before any call, so a configuration mistake fails loudly and clearly.
      if (!isOurVersion(kekRef)) {
        throw new Error(
          `data key was wrapped by ${kekRef}, which is not a version of the configured key ${cryptoKeyName}`,
        );
      }
      const ciphertext = Buffer.from(wrapped, 'base64url');
      const request: KmsDecryptRequest = {
        name: cryptoKeyName,
        ciphertext,
        additionalAuthenticatedData: aad,
        ciphertextCrc32c: { value: crc32c(ciphertext) },
        additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
      };
      return checked('Decrypt', async () => {
        let response: KmsDecryptResponse;
        try {
          [response] = await client.decrypt(request, callOptions);
        } catch (error) {
          throw callFailure('Decrypt', error);
        }
        const received = bytesOf(response.plaintext);
        if (typeof response.plaintext === 'object' && response.plaintext !== null) {
          response.plaintext.fill(0); // our copy is `received`; leave no other in memory
        }
        const sum = int64Of(response.plaintextCrc32c);
        if (received === null || received.length === 0 || sum === null) {
          throw new IntegrityError('the plaintext or its checksum is missing');
        }
        if (crc32c(received) !== sum) {
          received.fill(0);
          throw new IntegrityError('the plaintext does not match its checksum');
        }
        return received;
      });
    },
  };
}

/** How to reach Cloud KMS; `apiEndpoint`, `port` and `insecure` are for tests and emulators. */
export interface KmsKeyringOptions {
  /** The CryptoKey: `projects/P/locations/L/keyRings/R/cryptoKeys/K`. */
  keyName: string;
  apiEndpoint?: string;
  port?: number;
  /** Plaintext gRPC (no TLS, no Google credentials): only with an `apiEndpoint`. */
  insecure?: boolean;
  /** Total time for one call, the client's retries of transient errors included. */
  timeoutMs?: number;
}

/**
 * The Cloud KMS keyring with the real `@google-cloud/kms` client, imported only when KMS is
 * configured ({@link openKmsClient}: it is large, loading it on every cold start would cost
 * for nothing).
 * Credentials are the runtime's (the function's service account, which needs
 * `roles/cloudkms.cryptoKeyEncrypterDecrypter` on the key; `secrets rewrap` also reads the key,
 * `cloudkms.cryptoKeys.get`). `close()` ends the gRPC channel.
 */
export async function openKmsKeyring(
  options: KmsKeyringOptions,
): Promise<Keyring & { close(): Promise<void> }> {
  const client = await openKmsClient(options);
  const keyring = kmsKeyring(
    client,
    options.keyName,
    options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
  );
  return { ...keyring, close: () => client.close() };
}
