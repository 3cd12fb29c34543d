/**
 * The production token signer: ES256 signatures made by Cloud KMS (`AsymmetricSign` with a
 * CryptoKeyVersion of purpose ASYMMETRIC_SIGN and algorithm EC_SIGN_P256_SHA256), through the
 * small {@link KmsSigningClient} interface: the three methods of `@google-cloud/kms`'s
 * `KeyManagementServiceClient` it uses. The private key never leaves KMS.
 *
 * Integrity, as Google's data-integrity guidance asks: the digest goes with its CRC32C, and an
 * answer counts only when KMS says it verified that checksum, names the version asked for, and
 * its signature (or public key) matches the checksum that came with it. Past the checksums,
 * every signature is verified here with the version's public key before it is used: a
 * signature that does not verify is an integrity failure too. Such answers are discarded and
 * the call made again a few times; a persistent failure is refused, never handed out.
 *
 * Rotation: the signing version is fixed by configuration (`AGENTPACK_KMS_SIGNING_KEY`). The
 * published keys are the signing version's, then every other ENABLED EC_SIGN_P256_SHA256
 * version of the same CryptoKey, listed again at most every `refreshMs`. So an operator
 * creates version N+1 (published within `refreshMs` while N still signs), redeploys with
 * N+1 as the signing key (N stays published while it is ENABLED), and disables N only once the
 * longest-lived token it signed has expired (24 h for a run token).
 *
 * Errors: the key service being unreachable, overloaded or too slow is the caller's
 * `unavailable` (503, retry later); anything else is a plain Error (a logged 500). No error
 * message carries key material or the data signed: only method names, status codes and
 * resource names.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { systemClock, type Clock } from '../ports/clock.js';
import type { EcPublicJwk, TokenSigner } from '../ports/token-signer.js';
import { CRYPTO_KEY_VERSION_NAME } from '../config/config.js';
import { derToJoseSignature, ecPublicJwk } from '../tokens/ec-keys.js';
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
  type KmsEndpointOptions,
  type KmsInt64,
} from './kms-calls.js';
import { ApiError } from '../core/errors.js';

export { CRYPTO_KEY_VERSION_NAME } from '../config/config.js';

/** The one algorithm the signer signs and publishes with: ECDSA P-256 over SHA-256 (ES256). */
export const KMS_SIGNING_ALGORITHM = 'EC_SIGN_P256_SHA256';
/** Its number in `CryptoKeyVersionAlgorithm`, should a client answer enums as numbers. */
const SIGNING_ALGORITHM_NUMBER = 12;
/** `CryptoKeyVersionState.ENABLED`, as a string or its number. */
const ENABLED = new Set<unknown>(['ENABLED', 1]);

/** How often the published keys are listed again, by default: five minutes. */
export const KMS_SIGNER_REFRESH_MS_DEFAULT = 5 * 60_000;
/** After a listing that failed (or left a version out), the next one is tried this soon. */
export const KMS_SIGNER_RETRY_MS = 30_000;

export interface KmsAsymmetricSignRequest {
  /** The CryptoKeyVersion that signs. */
  name: string;
  digest: { sha256: Buffer };
  digestCrc32c: { value: number };
}

export interface KmsAsymmetricSignResponse {
  /** The CryptoKeyVersion that signed. */
  name?: string | null;
  /** A DER `ECDSA-Sig-Value`. */
  signature?: Uint8Array | string | null;
  signatureCrc32c?: KmsInt64 | null;
  verifiedDigestCrc32c?: boolean | null;
}

export interface KmsPublicKey {
  /** The CryptoKeyVersion whose public key this is. */
  name?: string | null;
  pem?: string | null;
  pemCrc32c?: KmsInt64 | null;
  algorithm?: string | number | null;
}

export interface KmsCryptoKeyVersion {
  name?: string | null;
  state?: string | number | null;
  algorithm?: string | number | null;
}

/** The subset of `KeyManagementServiceClient` the signer uses (its promise forms). */
export interface KmsSigningClient {
  asymmetricSign(
    request: KmsAsymmetricSignRequest,
    options?: KmsCallOptions,
  ): Promise<[KmsAsymmetricSignResponse, ...unknown[]]>;
  getPublicKey(
    request: { name: string },
    options?: KmsCallOptions,
  ): Promise<[KmsPublicKey, ...unknown[]]>;
  /**
   * The promise form pages through every page itself (gax auto-pagination, on by default) and
   * answers all the versions at once as its first element.
   */
  listCryptoKeyVersions(
    request: { parent: string; filter: string },
    options?: KmsCallOptions,
  ): Promise<[KmsCryptoKeyVersion[], ...unknown[]]>;
}

export interface KmsSignerOptions {
  /** Total time for one call, the client's retries of transient errors included. */
  timeoutMs?: number;
  /** When the published keys were last listed is measured with this clock. */
  clock?: Clock;
  /** The published keys are listed again at most this often (default five minutes). */
  refreshMs?: number;
  /**
   * Told when listing the published keys fails, or one listed version's public key cannot be
   * had; the last good list is served meanwhile. Default: ignored.
   */
  onRefreshError?: (error: Error) => void;
}

function checkVersionName(versionName: string): void {
  if (!CRYPTO_KEY_VERSION_NAME.test(versionName)) {
    throw new Error(
      'the KMS signing key must be a CryptoKeyVersion name: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N',
    );
  }
}

const isSigningAlgorithm = (algorithm: unknown): boolean =>
  algorithm === KMS_SIGNING_ALGORITHM || algorithm === SIGNING_ALGORITHM_NUMBER;

/** A version's public key, checked: the published JWK and the key that verifies. */
interface VersionKey {
  readonly jwk: EcPublicJwk;
  readonly key: KeyObject;
}

/**
 * A token signer over one Cloud KMS CryptoKeyVersion
 * (`projects/.../cryptoKeys/K/cryptoKeyVersions/N`), which must be ENABLED, of purpose
 * ASYMMETRIC_SIGN and algorithm EC_SIGN_P256_SHA256.
 *
 * @example
 * const signer = kmsSigner(new KeyManagementServiceClient(), 'projects/p/locations/global/keyRings/r/cryptoKeys/run-tokens/cryptoKeyVersions/1');
 */
export function kmsSigner(
  client: KmsSigningClient,
  versionName: string,
  options: KmsSignerOptions = {},
): TokenSigner {
  checkVersionName(versionName);
  const parent = versionName.slice(0, versionName.lastIndexOf('/cryptoKeyVersions/'));
  const callOptions: KmsCallOptions = { timeout: options.timeoutMs ?? KMS_TIMEOUT_MS_DEFAULT };
  const clock = options.clock ?? systemClock;
  const refreshMs = options.refreshMs ?? KMS_SIGNER_REFRESH_MS_DEFAULT;
  const onRefreshError = options.onRefreshError ?? (() => {});

  /** A version's public key never changes: asked for once per version (failures are not kept). */
  const keys = new Map<string, Promise<VersionKey>>();
  /** The other published versions from the last good list (the signing version aside). */
  let others: readonly string[] = [];
  let nextRefreshAt = -Infinity;
  let refreshing: Promise<void> | null = null;

  async function fetchPublicKey(version: string): Promise<VersionKey> {
    const answer = await checked('GetPublicKey', async () => {
      let response: KmsPublicKey;
      try {
        [response] = await client.getPublicKey({ name: version }, callOptions);
      } catch (error) {
        const failure = callFailure('GetPublicKey', error);
        if (failure instanceof ApiError || version !== versionName) throw failure;
        throw new Error(
          `${failure.message} (the signing key ${versionName} must be an ENABLED version of an ASYMMETRIC_SIGN CryptoKey with algorithm ${KMS_SIGNING_ALGORITHM})`,
        );
      }
      if (response.name !== version) {
        throw new IntegrityError('the answer names another key version');
      }
      const sum = int64Of(response.pemCrc32c);
      if (typeof response.pem !== 'string' || response.pem === '' || sum === null) {
        throw new IntegrityError('the public key or its checksum is missing');
      }
      if (crc32c(Buffer.from(response.pem, 'utf8')) !== sum) {
        throw new IntegrityError('the public key does not match its checksum');
      }
      return { pem: response.pem, algorithm: response.algorithm };
    });
    if (!isSigningAlgorithm(answer.algorithm)) {
      throw new Error(
        `Cloud KMS key version ${version} is ${String(answer.algorithm)}, not ${KMS_SIGNING_ALGORITHM}: tokens are signed with ES256 only`,
      );
    }
    try {
      const key = createPublicKey(answer.pem);
      return { jwk: ecPublicJwk(key), key };
    } catch {
      throw new Error(`Cloud KMS key version ${version}: its public key is not an EC P-256 key`);
    }
  }

  function publicKeyOf(version: string): Promise<VersionKey> {
    let entry = keys.get(version);
    if (entry === undefined) {
      const fetched = fetchPublicKey(version);
      keys.set(version, fetched);
      fetched.catch(() => {
        if (keys.get(version) === fetched) keys.delete(version);
      });
      entry = fetched;
    }
    return entry;
  }

  const versionPrefix = `${parent}/cryptoKeyVersions/`;
  const isSibling = (name: unknown): name is string =>
    typeof name === 'string' &&
    name !== versionName &&
    name.startsWith(versionPrefix) &&
    CRYPTO_KEY_VERSION_NAME.test(name);

  /**
   * Lists the published versions again; never throws. A failed listing keeps the last good
   * list; a version whose public key cannot be had is left out (it was never published: every
   * version published once has its key cached). Either is tried again soon.
   */
  async function refresh(): Promise<void> {
    const startedAt = clock.now();
    const failed = (error: unknown) => {
      nextRefreshAt = startedAt + Math.min(refreshMs, KMS_SIGNER_RETRY_MS);
      onRefreshError(error instanceof Error ? error : new Error(String(error)));
    };
    nextRefreshAt = startedAt + refreshMs;
    let listed: KmsCryptoKeyVersion[];
    try {
      [listed] = await client.listCryptoKeyVersions(
        { parent, filter: 'state=ENABLED' },
        callOptions,
      );
    } catch (error) {
      failed(callFailure('ListCryptoKeyVersions', error));
      return;
    }
    const candidates = [
      ...new Set(
        (listed ?? [])
          .filter((v) => ENABLED.has(v.state) && isSigningAlgorithm(v.algorithm))
          .map((v) => v.name)
          .filter(isSibling),
      ),
    ];
    const found = await Promise.all(
      candidates.map((version) =>
        publicKeyOf(version).then(
          () => version,
          (error: unknown) => {
            failed(error);
            return null;
          },
        ),
      ),
    );
    others = found.filter((version): version is string => version !== null);
  }

  return {
    async signingKid() {
      return (await publicKeyOf(versionName)).jwk.kid;
    },

    async sign(kid, data) {
      const signing = await publicKeyOf(versionName);
      if (kid !== signing.jwk.kid) {
        throw new Error(`sign: the kid is not the signing key's (${versionName})`);
      }
      const digest = createHash('sha256').update(data).digest();
      const request: KmsAsymmetricSignRequest = {
        name: versionName,
        digest: { sha256: digest },
        digestCrc32c: { value: crc32c(digest) },
      };
      return checked('AsymmetricSign', async () => {
        let response: KmsAsymmetricSignResponse;
        try {
          [response] = await client.asymmetricSign(request, callOptions);
        } catch (error) {
          throw callFailure('AsymmetricSign', error);
        }
        if (response.verifiedDigestCrc32c !== true) {
          throw new IntegrityError('the digest checksum was not verified');
        }
        // Google's guidance: check the name to be sure the intended key signed.
        if (response.name !== versionName) {
          throw new IntegrityError('the answer names another key version');
        }
        const der = bytesOf(response.signature);
        const sum = int64Of(response.signatureCrc32c);
        if (der === null || der.length === 0 || sum === null) {
          throw new IntegrityError('the signature or its checksum is missing');
        }
        if (crc32c(der) !== sum) {
          throw new IntegrityError('the signature does not match its checksum');
        }
        let signature: Buffer;
        try {
          signature = derToJoseSignature(der);
        } catch {
          throw new IntegrityError('the signature is not a DER ECDSA signature');
        }
        const key = signing.key;
        if (!verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)) {
          throw new IntegrityError('the signature does not verify with the signing key');
        }
        return signature;
      });
    },

    async publishedKeys() {
      const signing = await publicKeyOf(versionName);
      if (refreshing === null && clock.now() >= nextRefreshAt) {
        refreshing = refresh().finally(() => {
          refreshing = null;
        });
      }
      // A caller that comes while a listing is under way waits for it (it may be the first).
      if (refreshing !== null) await refreshing;
      const published = [{ ...signing.jwk }];
      for (const version of others) {
        const entry = await keys.get(version);
        if (entry !== undefined) published.push({ ...entry.jwk });
      }
      return published;
    },

    async close() {},
  };
}

/** How to reach Cloud KMS and which version signs; `apiEndpoint`, `port` and `insecure` are for tests and emulators. */
export interface KmsSignerOpenOptions extends KmsEndpointOptions {
  /** The signing CryptoKeyVersion: `projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`. */
  versionName: string;
  /** Total time for one call, the client's retries of transient errors included. */
  timeoutMs?: number;
}

/**
 * The Cloud KMS token signer with the real `@google-cloud/kms` client (imported only when KMS
 * signs). Credentials are the runtime's: the function's service account needs
 * `roles/cloudkms.signerVerifier` on the CryptoKey (sign, get the public keys) and
 * `cloudkms.cryptoKeyVersions.list` on it (`roles/cloudkms.viewer`). `close()` ends the gRPC
 * channel; it is idempotent.
 */
export async function openKmsSigner(
  options: KmsSignerOpenOptions & Pick<KmsSignerOptions, 'clock' | 'refreshMs' | 'onRefreshError'>,
): Promise<TokenSigner> {
  checkVersionName(options.versionName);
  const client = await openKmsClient(options);
  const signer = kmsSigner(client, options.versionName, {
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.refreshMs === undefined ? {} : { refreshMs: options.refreshMs }),
    ...(options.onRefreshError === undefined ? {} : { onRefreshError: options.onRefreshError }),
  });
  let closing: Promise<void> | null = null;
  return {
    ...signer,
    close: () => (closing ??= client.close()),
  };
}
