/**
 * Sends many requests so that they reach the server at the same moment: every connection is
 * opened first, and only once all are connected is every request written, in one synchronous
 * loop. The server then reads them all in the same turn of its event loop, so their handlers
 * really run interleaved (with fetch and Promise.all from the same process, requests trickle
 * in a few milliseconds apart and a fast handler finishes before the next one starts).
 */
import { connect, type Socket } from 'node:net';

export interface BurstRequest {
  method?: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

export interface BurstReply {
  status: number;
  body: any;
  text: string;
}

function payloadOf(host: string, request: BurstRequest): Buffer {
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(request.body);
  const lines = [
    `${request.method ?? 'POST'} ${request.path} HTTP/1.1`,
    `host: ${host}`,
    'connection: close',
    `content-length: ${body.length}`,
    ...Object.entries(request.headers).map(([n, v]) => `${n}: ${v}`),
  ];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

function parse(raw: Buffer): BurstReply {
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const bodyText = split === -1 ? '' : text.slice(split + 4);
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    body = undefined;
  }
  return { status, body, text: bodyText };
}

export async function burst(url: string, requests: BurstRequest[]): Promise<BurstReply[]> {
  const { hostname, port } = new URL(url);
  const host = `${hostname}:${port}`;
  const sockets: Socket[] = [];
  const replies = requests.map((_, i) => {
    const chunks: Buffer[] = [];
    return new Promise<BurstReply>((resolve, reject) => {
      const socket = connect(Number(port), hostname);
      sockets[i] = socket;
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => resolve(parse(Buffer.concat(chunks))));
    });
  });
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve, reject) => {
          socket.once('connect', () => resolve());
          socket.once('error', reject);
        }),
    ),
  );
  const payloads = requests.map((r) => payloadOf(host, r));
  // Written, not ended: node's HTTP server drops a request whose client half-closes before the
  // answer is ready; `connection: close` makes the server close once it has answered.
  for (const [i, socket] of sockets.entries()) socket.write(payloads[i]);
  return Promise.all(replies);
}
