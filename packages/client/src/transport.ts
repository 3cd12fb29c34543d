/**
 * One RPC over `fetch`: the body checked against the route's own request schema, the
 * credential's headers (and, for an enrolled device or a run, a signature made afresh for each
 * attempt: a new timestamp and nonce), a deadline per attempt, retries where the route allows
 * them, and the answer or the API's error turned into an {@link AgentpackError}.
 */
import type { z } from 'zod';
import type { CryptoBackend } from './crypto/backend.js';
import { utf8 } from './crypto/bytes.js';
import type { ReadyCredential } from './credentials.js';
import { AgentpackError, codeOfStatus, type ClientErrorCode } from './errors.js';
import { backoffMs, retryAfterMs, type AbortSignalLike, type ResolvedRetry } from './retry.js';
import { ROUTES, type RpcName, type RpcOutput } from './routes.js';

/** The part of a fetch answer the client reads. */
export interface ResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** What the client hands to `fetch`. */
export interface FetchInit {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Uint8Array;
  signal: AbortSignalLike;
  /** Never followed: a credential must not travel to wherever a redirect points. */
  redirect: 'manual';
}

/** A `fetch` (the global one by default; inject one for tests or a custom agent). */
export type FetchLike = (url: string, init: FetchInit) => Promise<ResponseLike>;

/** Options of one call. */
export interface CallOptions {
  /** Aborts the call (and any wait between attempts): the error's code is `aborted`. */
  signal?: AbortSignalLike;
  /** The deadline of each attempt, in milliseconds; default the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Attempts after the first for this call (only where the route may be retried); 0: none. */
  retries?: number;
}

export interface TransportConfig {
  baseUrl: string;
  fetch: FetchLike;
  sleep: (ms: number, signal?: AbortSignalLike) => Promise<void>;
  random: () => number;
  now: () => number;
  timeoutMs: number;
  retry: ResolvedRetry;
  validateResponses: boolean;
  /** The backend and the prepared credential, ready before the first request. */
  ready: Promise<{ backend: CryptoBackend; credential: ReadyCredential | null }>;
}

/** Why an attempt failed, for the retry decision. */
type Failure =
  | { kind: 'answer'; error: AgentpackError; retryAfter: number | null }
  | { kind: 'network'; error: AgentpackError }
  | { kind: 'timeout'; error: AgentpackError }
  | { kind: 'aborted'; error: AgentpackError };

function fieldOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'symbol' ? '?' : String(p))).join('.');
}

/** The request checked against the route's schema (the service's own), before anything is sent. */
export function checkInput(rpc: string, schema: z.ZodType, input: unknown): void {
  const result = schema.safeParse(input);
  if (result.success) return;
  const issue = result.error.issues[0];
  const field = issue === undefined ? '' : fieldOf(issue.path);
  throw new AgentpackError({
    code: 'invalid_argument',
    message: `${rpc}: ${field === '' ? '' : `${field}: `}${issue?.message ?? 'invalid request'}`,
    details: {
      ...(field === '' ? {} : { field }),
      issues: result.error.issues.map((i) => `${fieldOf(i.path)}: ${i.message}`),
    },
    rpc,
    attempts: 0,
  });
}

/** An abort signal for one attempt: the caller's, plus a deadline. */
function attemptSignal(
  outer: AbortSignalLike | undefined,
  timeoutMs: number,
): { signal: AbortSignalLike; timedOut: () => boolean; done: () => void } {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`no answer within ${timeoutMs} ms`));
  }, timeoutMs);
  const onAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted === true) controller.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}

function apiError(rpc: string, status: number, text: string, attempts: number): AgentpackError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const error =
    typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  if (typeof error === 'object' && error !== null) {
    const { code, message, details } = error as Record<string, unknown>;
    if (typeof code === 'string' && typeof message === 'string') {
      return new AgentpackError({
        code: code as ClientErrorCode,
        message,
        status,
        details:
          typeof details === 'object' && details !== null && !Array.isArray(details)
            ? (details as Record<string, unknown>)
            : undefined,
        rpc,
        attempts,
      });
    }
  }
  return new AgentpackError({
    code: codeOfStatus(status),
    message: `${rpc}: HTTP ${status} without an API error object`,
    status,
    rpc,
    attempts,
  });
}

export class Transport {
  constructor(private readonly config: TransportConfig) {}

  /**
   * Calls `rpc` with `input` (checked first); `rest` is the path segment of a prefix route.
   * Answers the parsed JSON of a 2xx answer.
   */
  async call<R extends RpcName>(
    rpc: R,
    input: unknown,
    options: CallOptions = {},
    rest = '',
  ): Promise<RpcOutput<R>> {
    const route = ROUTES[rpc];
    const body = input ?? {};
    checkInput(rpc, route.input, body);
    const { backend, credential } = await this.config.ready;
    const bytes = route.method === 'POST' ? utf8(JSON.stringify(body)) : undefined;
    const url = `${this.config.baseUrl}${route.path}${rest}`;
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new TypeError('timeoutMs must be a positive number of milliseconds');
    }
    const asked = options.retries ?? this.config.retry.retries;
    if (!Number.isSafeInteger(asked) || asked < 0 || asked > 10) {
      throw new TypeError('retries must be a whole number from 0 to 10');
    }
    const retries = route.retry === 'never' ? 0 : asked;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (bytes !== undefined) headers['content-type'] = 'application/json';
      if (route.auth === 'credential' && credential !== null) {
        Object.assign(headers, credential.headers);
        if (credential.signingSeed !== null) {
          // A fresh timestamp and nonce per attempt: a repeated nonce is refused as a replay.
          Object.assign(
            headers,
            backend.signRequest({
              method: route.method,
              path: route.path + rest,
              body: bytes ?? new Uint8Array(0),
              seed: credential.signingSeed,
              nowMs: this.config.now(),
              delegation: credential.delegation,
            }),
          );
        }
      }
      const outcome = await this.attempt(
        rpc,
        url,
        route.method,
        headers,
        bytes,
        timeoutMs,
        options,
        attempt,
      );
      if (!('kind' in outcome)) return outcome.value as RpcOutput<R>;
      const failure = outcome;
      const wait = this.retryWait(failure, attempt, retries);
      if (wait === null) throw failure.error;
      try {
        await this.config.sleep(wait, options.signal);
      } catch (cause) {
        throw new AgentpackError({
          code: 'aborted',
          message: `${rpc}: aborted`,
          rpc,
          attempts: attempt,
          cause,
        });
      }
    }
  }

  /** The wait before the next attempt, or null when the failure is final. */
  private retryWait(failure: Failure, attempt: number, retries: number): number | null {
    if (attempt > retries) return null;
    if (failure.kind === 'aborted') return null;
    if (failure.kind === 'answer') {
      const status = failure.error.status;
      if (status !== 503 && status !== 429) return null;
      if (failure.retryAfter !== null) {
        if (failure.retryAfter > this.config.retry.maxRetryAfterMs) return null;
        return failure.retryAfter;
      }
    }
    return backoffMs(this.config.retry, attempt - 1, this.config.random);
  }

  private async attempt(
    rpc: string,
    url: string,
    method: 'GET' | 'POST',
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    timeoutMs: number,
    options: CallOptions,
    attempt: number,
  ): Promise<{ value: unknown } | Failure> {
    const deadline = attemptSignal(options.signal, timeoutMs);
    let status: number;
    let text: string;
    let retryAfterHeader: string | null;
    try {
      const response = await this.config.fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: deadline.signal,
        redirect: 'manual',
      });
      status = response.status;
      retryAfterHeader = response.headers.get('retry-after');
      text = await response.text();
    } catch (cause) {
      if (deadline.timedOut()) {
        return {
          kind: 'timeout',
          error: new AgentpackError({
            code: 'timeout',
            message: `${rpc}: no answer within ${timeoutMs} ms`,
            rpc,
            attempts: attempt,
            cause,
          }),
        };
      }
      if (options.signal?.aborted === true) {
        return {
          kind: 'aborted',
          error: new AgentpackError({
            code: 'aborted',
            message: `${rpc}: aborted`,
            rpc,
            attempts: attempt,
            cause,
          }),
        };
      }
      return {
        kind: 'network',
        error: new AgentpackError({
          code: 'unavailable',
          message: `${rpc}: the service could not be reached (${cause instanceof Error ? cause.message : String(cause)})`,
          details: { reason: 'network' },
          rpc,
          attempts: attempt,
          cause,
        }),
      };
    } finally {
      deadline.done();
    }
    if (status >= 200 && status < 300) return { value: this.answer(rpc, status, text, attempt) };
    if (status === 0 || (status >= 300 && status < 400)) {
      const error = new AgentpackError({
        code: 'bad_response',
        message: `${rpc}: the service answered a redirect, which the client never follows`,
        status,
        rpc,
        attempts: attempt,
      });
      return { kind: 'answer', error, retryAfter: null };
    }
    const error = apiError(rpc, status, text, attempt);
    const retryAfter = retryAfterMs(retryAfterHeader, this.config.now());
    if (retryAfter === null) return { kind: 'answer', error, retryAfter };
    // The wait the service asked for, so a caller that gives up here knows when to come back.
    const withWait = new AgentpackError({
      code: error.code,
      message: error.message,
      status,
      details: { ...error.details, retry_after_ms: retryAfter },
      rpc,
      attempts: attempt,
    });
    return { kind: 'answer', error: withWait, retryAfter };
  }

  /** The JSON object of a 2xx answer, checked against the route's schema when asked to. */
  private answer(rpc: string, status: number, text: string, attempts: number): unknown {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new AgentpackError({
        code: 'bad_response',
        message: `${rpc}: the answer is not a JSON object`,
        status,
        rpc,
        attempts,
      });
    }
    if (this.config.validateResponses) {
      const result = ROUTES[rpc as RpcName].output.safeParse(value);
      if (!result.success) {
        throw new AgentpackError({
          code: 'bad_response',
          message: `${rpc}: the answer does not match its schema`,
          status,
          details: { issues: result.error.issues.map((i) => `${fieldOf(i.path)}: ${i.message}`) },
          rpc,
          attempts,
        });
      }
    }
    return value;
  }
}
