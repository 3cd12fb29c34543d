/** The time source of the core. Injected so tests can freeze and move time. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** RFC 3339 UTC string for a millisecond timestamp, as every time in the API is written. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}
