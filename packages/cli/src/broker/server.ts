/**
 * The credential broker of `run exec`: a node:http server on 127.0.0.1 that accepts a request
 * only with this exec's placeholder as its credential (compared in constant time), only from
 * loopback, only under `/<provider><path_prefix>/`, and forwards it to the provider's fixed
 * origin with the real key. It never honours a client-chosen upstream: `Host` is ignored, and
 * absolute-form targets and CONNECT are 400. One stderr line per request (provider, method,
 * path without query, status, bytes, ms), never a header or body.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Agent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { forward, providerAgent } from './forward.js';
import type { Provider } from './providers.js';

/** A provider the broker serves, with its real key (zeroed by {@link Broker.close}). */
export interface BrokerEntry {
  provider: Provider;
  key: Buffer;
}

export interface Broker {
  port: number;
  /** The placeholder the command is given (`apbk_` + 256 random bits, base64url). */
  placeholder: string;
  /** The command's environment for the brokered providers: base URLs and placeholders. */
  env(): Record<string, string>;
  /** Stops the broker, ends open connections and zeroes the keys. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** A path as it may be logged: printable, bounded. */
const loggable = (text: string) => text.replace(/[^\x21-\x7e]/g, '?').slice(0, 200);

/** True when `given` is the placeholder, in constant time for a given length. */
function isPlaceholder(given: string | undefined, placeholder: Buffer): boolean {
  if (given === undefined) return false;
  const bytes = Buffer.from(given, 'utf8');
  return bytes.length === placeholder.length && timingSafeEqual(bytes, placeholder);
}

/** The credentials a request presents, in every form the contract accepts. */
function presented(req: IncomingMessage, provider: Provider): string[] {
  const one = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(',') : value;
  };
  const found: Array<string | undefined> = [];
  const bearer = /^Bearer[ ]+(\S+)$/i.exec(one('authorization') ?? '');
  found.push(bearer?.[1], one('x-api-key'), one('x-goog-api-key'));
  const [before, after] = provider.authFormat.split('{key}') as [string, string];
  const custom = one(provider.authHeader);
  if (
    custom !== undefined &&
    custom.length >= before.length + after.length &&
    custom.startsWith(before) &&
    custom.endsWith(after)
  ) {
    found.push(custom.slice(before.length, custom.length - after.length));
  }
  return found.filter((v): v is string => v !== undefined);
}

/** A path that could climb out of the prefix once an upstream normalises it. */
function isSuspectPath(path: string): boolean {
  if (path.includes('\\') || /%2e|%2f|%5c/i.test(path)) return true;
  return path.split('/').some((segment) => segment === '.' || segment === '..');
}

const json = (res: ServerResponse, status: number, code: string, message: string) => {
  const body = `${JSON.stringify({ error: { code, message } })}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
  return body.length;
};

/**
 * Starts the broker on 127.0.0.1 (a free port, or `port`) for `entries`; `log` gets each
 * request's line. Rejects when the port cannot be bound.
 */
export async function startBroker(
  entries: readonly BrokerEntry[],
  options: { maxRequests: number | null; log: (line: string) => void; port?: number },
): Promise<Broker> {
  const placeholder = `apbk_${randomBytes(32).toString('base64url')}`;
  const placeholderBytes = Buffer.from(placeholder, 'utf8');
  const byName = new Map(entries.map((e) => [e.provider.name, e]));
  const agents = new Map<string, Agent>(
    entries.map((e) => [e.provider.name, providerAgent(e.provider)]),
  );
  let count = 0;
  const sockets = new Set<Socket>();

  const logLine = (
    provider: string,
    method: string,
    path: string,
    status: number,
    bytes: number,
    start: bigint,
  ) => {
    const ms = Number((process.hrtime.bigint() - start) / 1_000_000n);
    options.log(
      `broker: ${provider} ${loggable(method)} ${loggable(path)} ${status} ${bytes}B ${ms}ms`,
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const start = process.hrtime.bigint();
    count += 1;
    const method = req.method ?? '?';
    const target = req.url ?? '';
    const query = target.indexOf('?');
    const path = query === -1 ? target : target.slice(0, query);
    const name = /^\/([^/?]*)/.exec(path)?.[1] ?? '-';
    const entry = byName.get(name);
    const label = entry === undefined ? '-' : name;
    const refuse = (status: number, code: string, message: string) => {
      req.resume(); // the body is not wanted: drain it
      logLine(
        label,
        method,
        path.startsWith('/') ? path : '(absolute-form)',
        status,
        json(res, status, code, message),
        start,
      );
    };
    if (!LOOPBACK.has(req.socket.remoteAddress ?? ''))
      return refuse(403, 'forbidden', 'loopback only');
    // Policy: the upstream is the provider's, never the client's choice.
    if (!target.startsWith('/'))
      return refuse(400, 'bad_request', 'absolute-form request targets are refused');
    if (options.maxRequests !== null && count > options.maxRequests) {
      return refuse(429, 'too_many_requests', 'this exec’s broker request limit is reached');
    }
    if (entry === undefined) return refuse(404, 'not_found', 'no such brokered provider');
    const provider = entry.provider;
    if (!presented(req, provider).some((given) => isPlaceholder(given, placeholderBytes))) {
      return refuse(401, 'unauthorized', 'the broker accepts this exec’s placeholder key only');
    }
    const rest = path.slice(1 + name.length);
    if (!rest.startsWith(`${provider.pathPrefix}/`) || isSuspectPath(rest)) {
      return refuse(
        404,
        'not_found',
        `only paths under /${name}${provider.pathPrefix}/ are forwarded`,
      );
    }
    const forwarded = await forward(
      provider,
      agents.get(name)!,
      rest + (query === -1 ? '' : target.slice(query)),
      req,
      res,
      entry.key,
      placeholder,
    );
    logLine(name, method, path, forwarded.status, forwarded.bytes, start);
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // CONNECT would make us a tunnel to a client-chosen host: refused.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    const start = process.hrtime.bigint();
    count += 1;
    const body = '{"error":{"code":"bad_request","message":"CONNECT is refused"}}\n';
    socket.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
    logLine('-', 'CONNECT', '(authority-form)', 400, body.length, start);
  });
  server.on('clientError', (_error, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });

  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.removeListener('error', rejectListen);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    placeholder,
    env() {
      const env: Record<string, string> = {};
      for (const { provider } of entries) {
        for (const name of provider.baseUrlEnv) {
          env[name] = `http://127.0.0.1:${port}/${provider.name}${provider.basePath}`;
        }
        for (const name of provider.keyEnv) env[name] = placeholder;
      }
      return env;
    },
    async close() {
      const closed = new Promise<void>((resolveClose) => server.close(() => resolveClose()));
      for (const socket of sockets) socket.destroy();
      for (const agent of agents.values()) agent.destroy();
      await closed;
      for (const entry of entries) entry.key.fill(0);
    },
  };
}
