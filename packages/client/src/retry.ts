/**
 * Retries: exponential backoff with full jitter (a uniformly random wait in [0, min(max, base ·
 * 2^n))), or exactly the service's `Retry-After` when it sends one, for a bounded number of
 * attempts — and only for calls that are safe to repeat, only after a 503, a 429, a network
 * failure or a timeout. The clock, the random source and the sleep are injectable, so tests
 * count attempts and waits without waiting.
 */

export interface RetryOptions {
  /** Attempts after the first; default 2 (so at most 3 attempts). 0 turns retries off. */
  retries?: number;
  /** The first backoff ceiling; default 200 ms. */
  baseDelayMs?: number;
  /** The largest backoff ceiling; default 5000 ms. */
  maxDelayMs?: number;
  /**
   * The longest `Retry-After` the client waits for; default 30000 ms. A longer one is not waited
   * out: the error is thrown at once (its `details.retry_after_ms` says how long to wait).
   */
  maxRetryAfterMs?: number;
}

export interface ResolvedRetry {
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
}

function count(value: unknown, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new TypeError(`${name} must be a whole number from 0 to ${max}`);
  }
  return value;
}

export function resolveRetry(option: number | RetryOptions | undefined): ResolvedRetry {
  const o: RetryOptions = typeof option === 'number' ? { retries: option } : (option ?? {});
  return {
    retries: count(o.retries, 2, 'retries', 10),
    baseDelayMs: count(o.baseDelayMs, 200, 'retries.baseDelayMs', 60_000),
    maxDelayMs: count(o.maxDelayMs, 5_000, 'retries.maxDelayMs', 600_000),
    maxRetryAfterMs: count(o.maxRetryAfterMs, 30_000, 'retries.maxRetryAfterMs', 3_600_000),
  };
}

/** Full jitter: a uniformly random wait below min(max, base · 2^retry). */
export function backoffMs(retry: ResolvedRetry, retryIndex: number, random: () => number): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** retryIndex);
  const r = random();
  return Math.floor((Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0) * ceiling);
}

/**
 * The wait a `Retry-After` header asks for (RFC 9110: delay-seconds or an HTTP-date), in
 * milliseconds from `nowMs`, or null when absent or unreadable. A date in the past is 0.
 */
export function retryAfterMs(header: string | null, nowMs: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  // An HTTP-date names its weekday and "GMT"; Date.parse of anything else is not trusted.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return null;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : null;
}

/** A sleep that ends early (rejecting with the signal's reason) when `signal` aborts. */
export function defaultSleep(ms: number, signal?: AbortSignalLike): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The part of AbortSignal the client uses (so its types need no DOM or Node typings). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
