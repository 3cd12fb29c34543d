/**
 * The broker's upstream request: to the provider's fixed origin only, over node:https with
 * TLS verification on (trusting `ca_file` when the provider has one), with the client's
 * hop-by-hop and credential headers dropped and the real key set in the provider's auth header.
 * The answer streams back: redirects are passed back as they are (never followed), and the
 * real key, if the upstream echoes it, is replaced by the placeholder.
 */
import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';
import { Agent, request } from 'node:https';
import type { Provider } from './providers.js';
import { RedactStream, redactHeader } from './redact.js';

/** Hop-by-hop headers (RFC 9110 7.6.1) and those like them: never forwarded either way. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
]);

/** Credential headers a client may send: the broker drops them all and sets the real one. */
const CLIENT_CREDENTIALS = new Set(['authorization', 'x-api-key', 'x-goog-api-key', 'cookie']);

/**
 * Request headers that would let a command read an echoed key in pieces the redaction cannot
 * see whole (byte ranges of a response): dropped.
 */
const PIECEWISE = new Set(['range', 'if-range']);

/** A header that never crosses the broker: hop-by-hop, proxy-*, or named by `connection`. */
function isHopByHop(name: string, listed: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed.has(name);
}

/** The names a `Connection` header lists (they are hop-by-hop too). */
function connectionListed(headers: IncomingHttpHeaders): Set<string> {
  const value = headers['connection'];
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
  );
}

/** The request headers sent upstream. */
export function upstreamHeaders(
  provider: Provider,
  headers: IncomingHttpHeaders,
  key: Buffer,
): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || isHopByHop(name, listed)) continue;
    if (name === 'host' || name === provider.authHeader || CLIENT_CREDENTIALS.has(name)) continue;
    if (name.startsWith('x-agentpack-')) continue; // the run's own credentials stay here
    if (PIECEWISE.has(name)) continue;
    out[name] = value;
  }
  // Framing: a body the client sent chunked goes upstream chunked, whatever the method. Left
  // unframed (node writes a GET's body raw), its bytes would be read upstream as a second
  // request on the kept-alive connection, which the next request's real key would then complete.
  if (headers['transfer-encoding'] !== undefined) out['transfer-encoding'] = 'chunked';
  // An encoded body could hide an echoed key from the redaction: ask for it plain.
  out['accept-encoding'] = 'identity';
  out['host'] = provider.port === 443 ? provider.hostname : `${provider.hostname}:${provider.port}`;
  // The one place the real key goes: the provider's auth header, to its origin, over TLS.
  out[provider.authHeader] = provider.authFormat.replace('{key}', key.toString('utf8'));
  return out;
}

/** The response headers passed back: hop-by-hop dropped, the key redacted from every value. */
function downstreamHeaders(
  headers: IncomingHttpHeaders,
  key: string,
  placeholder: string,
  keepLength: boolean,
): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || isHopByHop(name, listed)) continue;
    // The body is redacted on the way, so its length may change: it goes chunked instead.
    if (name === 'content-length' && !keepLength) continue;
    out[name] = redactHeader(value, key, placeholder);
  }
  return out;
}

/** One agent per provider: keep-alive to the origin, the provider's trust. */
export function providerAgent(provider: Provider): Agent {
  return new Agent({
    keepAlive: true,
    maxSockets: 64,
    ...(provider.ca === null ? {} : { ca: provider.ca }),
  });
}

export interface Forwarded {
  status: number;
  bytes: number;
}

/**
 * Forwards `req` (already checked) to `provider` at `path` (with its query), streams the answer
 * into `res`, and resolves when the exchange is over (status 502 when the upstream could not be
 * reached, or its TLS certificate could not be verified).
 */
export function forward(
  provider: Provider,
  agent: Agent,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  key: Buffer,
  placeholder: string,
): Promise<Forwarded> {
  return new Promise((resolveDone) => {
    let settled = false;
    const done = (status: number, bytes: number) => {
      if (settled) return;
      settled = true;
      resolveDone({ status, bytes });
    };
    const upstream = request({
      host: provider.hostname,
      port: provider.port,
      servername: /^[0-9.]+$|:/.test(provider.hostname) ? undefined : provider.hostname,
      method: req.method,
      path,
      headers: upstreamHeaders(provider, req.headers, key),
      agent,
      rejectUnauthorized: true,
    });
    const fail = () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"bad_gateway","message":"the provider could not be reached"}}\n');
        done(502, 0);
      } else {
        res.destroy();
        done(res.statusCode, 0);
      }
    };
    upstream.once('error', fail);
    let answered: { status: number; redact: RedactStream; complete: boolean } | null = null;
    upstream.once('response', (answer) => {
      const encoding = String(answer.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (encoding !== 'identity') {
        // Asked for plain, sent encoded: the redaction could not read it, so it is not passed.
        answer.resume();
        fail();
        return;
      }
      const status = answer.statusCode ?? 502;
      const noBody = req.method === 'HEAD' || status === 204 || status === 304;
      const keyText = key.toString('utf8');
      res.writeHead(status, downstreamHeaders(answer.headers, keyText, placeholder, noBody));
      // SSE and the like: headers go now, each chunk as it comes.
      res.flushHeaders();
      const redact = new RedactStream(key, Buffer.from(placeholder, 'utf8'));
      const state = { status, redact, complete: false };
      answered = state;
      answer.once('end', () => (state.complete = true));
      answer.once('error', () => res.destroy());
      redact.once('error', () => res.destroy());
      answer.pipe(redact).pipe(res);
    });
    // Over, or the client went away first (then the upstream request goes too).
    res.once('close', () => {
      if (answered === null) {
        upstream.destroy();
        return done(res.statusCode, 0);
      }
      if (!answered.complete) upstream.destroy();
      done(answered.status, answered.redact.bytes);
    });
    req.once('error', () => upstream.destroy());
    req.pipe(upstream);
  });
}
