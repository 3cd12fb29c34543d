/**
 * node:http ↔ the HTTP core. Used by the local server and by the Cloud Function (whose
 * request and response are node:http objects underneath Express).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { INTERNAL_ERROR } from '../core/errors.js';
import { MAX_BODY_BYTES, type HttpRequest, type HttpResponse } from '../ports/http.js';
import type { Logger } from '../ports/logger.js';

/** The path part of a request target, without the query string. */
export function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * Reads a request's body, keeping at most {@link MAX_BODY_BYTES} + 1 bytes: past that the rest
 * is discarded and the request is marked too large (the core answers 413).
 */
export function readRequest(req: IncomingMessage): Promise<HttpRequest> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () =>
      resolve({
        method: req.method ?? 'GET',
        path: pathOf(req.url),
        headers: req.headersDistinct,
        body: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks),
        bodyTooLarge: tooLarge,
      }),
    );
    req.on('error', reject);
  });
}

/** Writes a core response as JSON. */
export function sendResponse(res: ServerResponse, response: HttpResponse): void {
  const payload = JSON.stringify(response.body);
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.end(payload);
}

/**
 * The last-resort answer of both transports when something unexpected escapes the handler: the
 * error is logged (its name and message, never a request's content) and the caller gets the
 * generic 500 of the error table, unless an answer was already on its way.
 */
export function sendInternalError(res: ServerResponse, logger: Logger, error: unknown): void {
  logger.error('request.failed', {
    error: error instanceof Error ? `${error.name}: ${error.message}` : 'non-error thrown',
  });
  if (res.headersSent) return;
  sendResponse(res, {
    status: INTERNAL_ERROR.status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    body: INTERNAL_ERROR.toBody(),
  });
}
