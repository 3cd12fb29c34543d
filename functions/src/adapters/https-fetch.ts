/**
 * A bounded JSON GET over node:https, for the documents of trusted token issuers (OIDC discovery
 * and JWKS). Everything about it is bounded: one total deadline (connect, TLS, headers and body
 * together), a body size cap enforced while reading (the socket is destroyed as soon as the cap
 * is passed), no redirects, status 200 only, identity encoding only, and a JSON object only.
 *
 * Plain `http:` is for tests only: it is refused before any connection unless the host is
 * literally loopback (`127.0.0.1`, `::1`, `localhost`). A fresh agent per request, so no pooled
 * socket outlives the call.
 *
 * Every failure is a {@link FetchJsonError} whose `reason` is one of a closed set and whose
 * message names the URL (origin and path, never the query) and the reason, never the body.
 */
import http from 'node:http';
import https from 'node:https';
import { isJsonObject } from '@agentpack-identity/protocol';
import type { FetchJson, FetchJsonOptions, FetchJsonResult } from '../core/issuer-keys.js';

export type { FetchJson, FetchJsonOptions, FetchJsonResult } from '../core/issuer-keys.js';

/** Every reason a fetch can fail for. */
export const FETCH_FAILURES = [
  'bad_url',
  'insecure_url',
  'timeout',
  'tls',
  'network',
  'redirect',
  'bad_status',
  'encoded',
  'too_large',
  'not_json',
  'not_object',
] as const;

export type FetchFailure = (typeof FETCH_FAILURES)[number];

/** A failed {@link fetchJson}: a reason from a closed set and a message safe to log. */
export class FetchJsonError extends Error {
  readonly reason: FetchFailure;

  constructor(reason: FetchFailure, message: string) {
    super(message);
    this.name = 'FetchJsonError';
    this.reason = reason;
  }
}

/** The default total deadline of one fetch. */
export const DEFAULT_FETCH_TIMEOUT_MS = 5_000;

/** The default body cap, when the caller gives none. */
export const DEFAULT_FETCH_MAX_BYTES = 256 * 1024;

import { isFetchableUrl } from '../core/fetchable-url.js';

export { isFetchableUrl };

/** Node's certificate verification error codes (`err.code`), all reported as `tls`. */
const TLS_CODES =
  /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** `max-age` of a Cache-Control header, or null when there is none or it is not a number. */
export function maxAgeOf(header: string | string[] | undefined): number | null {
  if (header === undefined) return null;
  const text = Array.isArray(header) ? header.join(',') : header;
  for (const directive of text.split(',')) {
    const m = /^\s*max-age\s*=\s*"?([0-9]{1,10})"?\s*$/i.exec(directive);
    if (m !== null) return Number(m[1]);
  }
  return null;
}

function checkOption(name: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new RangeError(`fetchJson: ${name} must be an integer from 1 to ${max}`);
  }
  return value;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * GETs `url` and parses its body as a JSON object. Rejects with a {@link FetchJsonError} on any
 * failure (a RangeError only for options that are a caller's bug).
 *
 * @example
 * const { body, maxAgeSeconds } = await fetchJson('https://issuer.example/jwks', {
 *   maxBytes: 256 * 1024,
 * });
 */
export const fetchJson: FetchJson = (
  url: string,
  options: FetchJsonOptions = {},
): Promise<FetchJsonResult> => {
  const timeoutMs = checkOption('timeoutMs', options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS, 60_000);
  const maxBytes = checkOption('maxBytes', options.maxBytes ?? DEFAULT_FETCH_MAX_BYTES, 1 << 26);
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.reject(new FetchJsonError('bad_url', 'fetch: the URL does not parse'));
  }
  const where = `GET ${target.origin}${target.pathname}`;
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    return Promise.reject(new FetchJsonError('bad_url', `${where}: not an https URL`));
  }
  if (target.username !== '' || target.password !== '') {
    return Promise.reject(new FetchJsonError('bad_url', `${where}: the URL carries credentials`));
  }
  if (!isFetchableUrl(target)) {
    return Promise.reject(
      new FetchJsonError('insecure_url', `${where}: plain http is refused (https only)`),
    );
  }
  return new Promise<FetchJsonResult>((resolve, reject) => {
    let done = false;
    const fail = (reason: FetchFailure, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      request.destroy();
      reject(new FetchJsonError(reason, `${where}: ${detail}`));
    };
    const timer = setTimeout(
      () => fail('timeout', `no complete answer within ${timeoutMs} ms`),
      timeoutMs,
    );
    const requestOptions: https.RequestOptions = {
      method: 'GET',
      agent: false,
      headers: {
        accept: 'application/json',
        'accept-encoding': 'identity',
        'user-agent': 'agentpack-identity',
      },
    };
    if (options.ca !== undefined) requestOptions.ca = options.ca;
    let request: http.ClientRequest;
    try {
      request =
        target.protocol === 'https:'
          ? https.request(target, requestOptions)
          : http.request(target, requestOptions);
    } catch {
      done = true;
      clearTimeout(timer);
      reject(new FetchJsonError('tls', `${where}: the request options are not usable`));
      return;
    }
    request.on('error', (err: NodeJS.ErrnoException) => {
      const code =
        typeof err.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(err.code) ? err.code : '';
      if (TLS_CODES.test(code)) fail('tls', `the TLS connection was refused (${code})`);
      else fail('network', `the request failed${code === '' ? '' : ` (${code})`}`);
    });
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        fail('redirect', `answered a redirect (${status}); redirects are not followed`);
        return;
      }
      if (status !== 200) {
        fail('bad_status', `answered ${status}, not 200`);
        return;
      }
      const encoding = response.headers['content-encoding'];
      if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
        fail('encoded', 'answered an encoded body (only identity is accepted)');
        return;
      }
      const declared = response.headers['content-length'];
      if (declared !== undefined && Number(declared) > maxBytes) {
        fail('too_large', `the body is larger than ${maxBytes} bytes`);
        return;
      }
      const maxAgeSeconds = maxAgeOf(response.headers['cache-control']);
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > maxBytes) {
          chunks.length = 0;
          fail('too_large', `the body is larger than ${maxBytes} bytes`);
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', () => fail('network', 'the answer was cut off'));
      response.on('close', () => {
        if (!response.complete) fail('network', 'the answer was cut off');
      });
      response.on('end', () => {
        if (done) return;
        let body: unknown;
        try {
          body = JSON.parse(utf8.decode(Buffer.concat(chunks)));
        } catch {
          fail('not_json', 'the body is not JSON');
          return;
        }
        if (!isJsonObject(body)) {
          fail('not_object', 'the body is not a JSON object');
          return;
        }
        done = true;
        clearTimeout(timer);
        resolve({ body, maxAgeSeconds });
      });
    });
    request.end();
  });
};
