/**
 * Talking to the service: the URL policy (https, or plain http to loopback only), the one POST
 * every command makes (with a deadline, never following a redirect), and how an answer is read.
 */
import { LOOPBACK_HOST_PATTERN } from '@agentpack-identity/protocol';
import { CliError } from './io.js';

/** Every call to the service has a deadline: a command never hangs on a silent server. */
export const REQUEST_TIMEOUT_MS = 15_000;

/**
 * The service's base URL from `option` (without a trailing slash), refusing URLs that would
 * expose a credential or be ambiguous.
 */
export function serviceUrl(raw: string, option: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`${option}: "${raw}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CliError(`${option}: the URL must be http(s)`);
  }
  // Policy: credentials (a bridge key, a device key, an enrollment code) and secrets travel in
  // the request or its answer, so never in clear over a network.
  if (url.protocol === 'http:' && !LOOPBACK_HOST_PATTERN.test(url.hostname)) {
    throw new CliError(`${option}: plain http is allowed to loopback addresses only; use https`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new CliError(`${option}: the URL must have no credentials, query or fragment`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** A short single-line rendering of a service's error answer (it is not ours to trust). */
export function describeAnswer(status: number, text: string): string {
  let detail = '';
  try {
    const body: unknown = JSON.parse(text);
    const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === 'string') detail += ` ${error.code}`;
    if (typeof error?.message === 'string') detail += `: ${error.message}`;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${status}${detail.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 200)}`;
}

/**
 * POSTs `body` to `url` and returns the status and text of the answer; `failure` starts the
 * one-line reason when the service cannot be reached. The deadline is `timeoutMs`; `signal`
 * may end the call sooner (an interrupted `audit tail`).
 */
export async function post(
  url: string,
  headers: Record<string, string>,
  body: string,
  failure: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ status: number; text: string }> {
  let res: Response;
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      // A redirect would send a credential somewhere we were not told to: treat it as failure.
      redirect: 'manual',
      signal: signal === undefined ? deadline : AbortSignal.any([deadline, signal]),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const name = (error as Error).name;
    throw new CliError(
      `${failure}: cannot reach ${url} (${cause ?? (name === 'TimeoutError' ? 'timeout' : 'network error')})`,
    );
  }
  const text = await res.text().catch(() => '');
  return { status: res.status, text };
}

/** The JSON object of a 2xx answer, or a one-line failure. */
export function answerObject(
  status: number,
  text: string,
  failure: string,
  ok: (status: number) => boolean,
): Record<string, unknown> {
  if (!ok(status)) throw new CliError(`${failure}: ${describeAnswer(status, text)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${failure}: HTTP ${status} with an answer that is not JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CliError(`${failure}: HTTP ${status} with an answer that is not a JSON object`);
  }
  return body as Record<string, unknown>;
}
