/**
 * The opt-in in-memory cache of secret values (`cache: {maxAgeMs}`). One per client, so one
 * per credential: a value read with one credential is never served to another (a client made
 * by `withCredential` or `withDelegation` starts empty). `secrets.get` is answered from it while
 * an entry is younger than `maxAgeMs`; a put, delete, undelete, destroy, grant or ungrant made
 * through the client drops every entry of that name. Values live in memory in clear (a sealed
 * answer is cached opened): leave the cache off where that matters more than the round trip.
 */

export interface CacheOptions {
  /** How long a value is served without asking the service, in milliseconds (> 0). */
  maxAgeMs: number;
  /** The most entries kept (the oldest are dropped first); default 1000. */
  maxEntries?: number;
}

/** What `client.cache` offers. */
export interface SecretCacheControl {
  /** Drops every cached version of `name` (own and shared), or everything when left out. */
  invalidate(name?: string): void;
  /** How many entries are cached now. */
  readonly size: number;
}

interface Entry<V> {
  name: string;
  at: number;
  value: V;
}

export class SecretCache<V> implements SecretCacheControl {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;

  constructor(
    options: CacheOptions,
    private readonly now: () => number,
  ) {
    if (
      typeof options.maxAgeMs !== 'number' ||
      !Number.isFinite(options.maxAgeMs) ||
      options.maxAgeMs <= 0
    ) {
      throw new TypeError('cache.maxAgeMs must be a positive number of milliseconds');
    }
    const max = options.maxEntries ?? 1000;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new TypeError('cache.maxEntries must be a whole number from 1');
    }
    this.maxAgeMs = options.maxAgeMs;
    this.maxEntries = max;
  }

  /** The key of one read: whose (own or shared), which name, which version (or the current). */
  static key(name: string, owner: string | undefined, version: number | undefined): string {
    return `${owner ?? ''}\n${name}\n${version ?? ''}`;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const age = this.now() - entry.at;
    if (age >= this.maxAgeMs || age < 0) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, name: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { name, at: this.now(), value });
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
  }

  invalidate(name?: string): void {
    if (name === undefined) {
      this.entries.clear();
      return;
    }
    for (const [key, entry] of this.entries) if (entry.name === name) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
