/**
 * What every Cloud KMS adapter (the keyring, kms-keyring.ts; the token signer, kms-signer.ts)
 * does the same way: the per-call options, reading the checksums and bytes of an answer, the
 * bounded retry of an answer that fails its integrity check, the mapping of a failed call to
 * the caller's `unavailable` or a plain Error, and opening the real `@google-cloud/kms` client.
 *
 * No error made here ever carries key material or the data of a call: only method names,
 * status codes, the service's own short explanation and resource names.
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import { ApiError } from '../core/errors.js';

/** An `google.protobuf.Int64Value` as the client hands it back (a decimal string, or a Long). */
export interface KmsInt64 {
  value?: number | string | { toString(): string } | null;
}

/** Per-call options passed to the client (gax `CallOptions`). */
export interface KmsCallOptions {
  /** Total milliseconds for the call, the client's own retries of transient errors included. */
  timeout?: number;
}

/** Default total time for one KMS call, retries included: well inside a request's budget. */
export const KMS_TIMEOUT_MS_DEFAULT = 10_000;

/**
 * How many times a response that fails its integrity check is asked for again. Google's guidance:
 * "discard the response ... and perform a limited number of retries".
 */
export const INTEGRITY_ATTEMPTS = 3;

/** gRPC status codes that mean "the key service cannot answer now": DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE. */
const UNAVAILABLE_STATUS = new Set([4, 8, 14]);
/** Node network errors (a REST fallback, a proxy, a resolver) that mean the same. */
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** gRPC status names by code. */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** The error a failed KMS call becomes: `unavailable` for transient trouble, else a plain Error. */
export function callFailure(method: string, error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  if (
    (typeof code === 'number' && UNAVAILABLE_STATUS.has(code)) ||
    (typeof code === 'string' && UNAVAILABLE_ERRNO.has(code))
  ) {
    return new ApiError('unavailable', 'the key service is unavailable');
  }
  const status =
    typeof code === 'number' ? `${code} ${GRPC_STATUS_NAMES[code] ?? ''}`.trim() : 'no status';
  // The service's own explanation (e.g. which permission is missing) helps the operator; it
  // never contains our plaintext. Kept to one short line.
  const details = (error as { details?: unknown } | null)?.details;
  const why =
    typeof details === 'string' && details !== ''
      ? `: ${details.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 200)}`
      : '';
  return new Error(`Cloud KMS ${method} failed (${status})${why}`);
}

/** A `bytes` field as a Buffer (the client answers a Uint8Array, or base64 over REST), or null. */
export function bytesOf(value: Uint8Array | string | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.from(value);
}

/** The checksum in an Int64Value, or null when absent or not a uint32. */
export function int64Of(field: KmsInt64 | null | undefined): number | null {
  const raw = field?.value;
  if (raw === null || raw === undefined) return null;
  const text = typeof raw === 'number' ? String(raw) : raw.toString();
  if (!/^\d{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n <= 0xffffffff ? n : null;
}

/** An answer that failed its integrity check: discarded, and the call made again ({@link checked}). */
export class IntegrityError extends Error {}

/**
 * Calls `attempt` until its response passes the integrity check (does not throw an
 * {@link IntegrityError}), {@link INTEGRITY_ATTEMPTS} times at most; then refuses with a plain
 * Error. Any other error is thrown at once.
 */
export async function checked<T>(method: string, attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof IntegrityError)) throw error;
      if (i >= INTEGRITY_ATTEMPTS) {
        throw new Error(
          `Cloud KMS ${method}: the response failed its integrity check (${error.message}) ${INTEGRITY_ATTEMPTS} times; refused`,
        );
      }
    }
  }
}

/** How to reach Cloud KMS; `apiEndpoint`, `port` and `insecure` are for tests and emulators. */
export interface KmsEndpointOptions {
  apiEndpoint?: string;
  port?: number;
  /** Plaintext gRPC (no TLS, no Google credentials): only with an `apiEndpoint`. */
  insecure?: boolean;
}

/**
 * The real `@google-cloud/kms` client, imported only here and only when KMS is configured (it
 * is large: loading it on every cold start would cost for nothing). Credentials are the
 * runtime's, unless `insecure`. The caller ends its gRPC channel with `close()`.
 */
export async function openKmsClient(
  options: KmsEndpointOptions,
): Promise<KeyManagementServiceClient> {
  if (options.insecure === true && options.apiEndpoint === undefined) {
    throw new Error('an insecure KMS connection needs an explicit endpoint');
  }
  const { KeyManagementServiceClient } = await import('@google-cloud/kms');
  const clientOptions: NonNullable<ConstructorParameters<typeof KeyManagementServiceClient>[0]> =
    {};
  if (options.apiEndpoint !== undefined) clientOptions.apiEndpoint = options.apiEndpoint;
  if (options.port !== undefined) clientOptions.port = options.port;
  if (options.insecure === true) {
    const grpc = await import('@grpc/grpc-js');
    clientOptions.sslCreds = grpc.credentials.createInsecure();
    // No Google credentials are used on this connection, so the client must not go looking for
    // them: naming the universe stops it from probing for Application Default Credentials
    // (which ends in the GCE metadata server, off this machine).
    clientOptions.universeDomain = 'googleapis.com';
  }
  return new KeyManagementServiceClient(clientOptions);
}
