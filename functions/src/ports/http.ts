/**
 * The HTTP core's own request and response: independent of the Cloud Functions trigger and of
 * node:http, so both adapters serve the same handler and tests can call it directly.
 */

/** A request as the adapters hand it over. Header names are lowercase; values keep repeats. */
export interface HttpRequest {
  method: string;
  /** The path without the query string, e.g. `/agents/get`. */
  path: string;
  headers: Readonly<Record<string, readonly string[] | undefined>>;
  /** The raw body; the adapters stop reading at {@link MAX_BODY_BYTES} + 1 bytes. */
  body: Buffer;
  /** True when the adapter saw more than {@link MAX_BODY_BYTES} and stopped reading. */
  bodyTooLarge?: boolean;
}

/** A response: status, headers and a JSON body. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** The largest request body accepted: 64 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;
