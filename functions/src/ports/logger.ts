/** Fields of a structured log line. Never put a key, a secret value or a request body here. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/**
 * The structured log. On Cloud Functions it is the firebase-functions logger (Cloud Logging);
 * locally it writes JSON lines. Failed authentications go here with a reason code, not to the
 * store.
 */
export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}
