/**
 * A raw HTTP/1.1 request over a socket, for what fetch refuses to send: repeated headers,
 * non-ASCII bytes, odd casing.
 */
import { connect } from 'node:net';

export interface RawResult {
  status: number;
  body: any;
  head: string;
}

export function rawRequest(
  url: string,
  options: {
    method?: string;
    path: string;
    headers: Array<[string, string]>;
    body?: Buffer | string;
  },
): Promise<RawResult> {
  const { hostname, port } = new URL(url);
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const lines = [
    `${options.method ?? 'POST'} ${options.path} HTTP/1.1`,
    `host: ${hostname}:${port}`,
    'connection: close',
    `content-length: ${body.length}`,
    ...options.headers.map(([n, v]) => `${n}: ${v}`),
  ];
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(Buffer.concat([head, body])));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const headPart = text.slice(0, split);
      const status = Number(headPart.split(' ')[1]);
      const bodyText = text.slice(split + 4);
      let parsed: unknown;
      try {
        parsed = JSON.parse(bodyText);
      } catch {
        parsed = undefined;
      }
      resolve({ status, body: parsed, head: headPart });
    });
  });
}
