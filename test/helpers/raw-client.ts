/**
 * A raw HTTP/1.1 client over a socket that sends exactly the bytes it is given (repeated and
 * odd-case header names, latin1 and UTF-8 bytes, no content-type, any method) and keeps
 * whatever the server answered even when the server resets the connection afterwards (as
 * node does after a 431). Unlike `raw-http.ts`, it returns the response headers and the body
 * text, and accepts header values as raw bytes.
 */
import { connect } from 'node:net';

export interface RawReply {
  /** 0 when the server closed the connection without a status line. */
  status: number;
  /** Response headers, lowercase names, values in order of appearance. */
  headers: Record<string, string[]>;
  /** The body as UTF-8 text (empty when none). */
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: any;
  /** True when the connection ended by an error (e.g. ECONNRESET) rather than a clean close. */
  reset: boolean;
}

export interface RawRequestSpec {
  method?: string;
  path: string;
  /** Header lines, sent in order, names and values as given. */
  headers: ReadonlyArray<readonly [string, string | Buffer]>;
  body?: Buffer | string;
  /** Default true: send a content-length matching the body. */
  contentLength?: boolean;
}

/** Sends one request on a fresh connection (`connection: close`) and reads the reply. */
export function sendRaw(url: string, spec: RawRequestSpec): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  const body = spec.body === undefined ? Buffer.alloc(0) : Buffer.from(spec.body);
  const parts: Buffer[] = [
    Buffer.from(`${spec.method ?? 'POST'} ${spec.path} HTTP/1.1\r\n`, 'latin1'),
    Buffer.from(`host: ${hostname}:${port}\r\nconnection: close\r\n`, 'latin1'),
  ];
  if (spec.contentLength !== false) {
    parts.push(Buffer.from(`content-length: ${body.length}\r\n`, 'latin1'));
  }
  for (const [name, value] of spec.headers) {
    parts.push(
      Buffer.from(`${name}: `, 'latin1'),
      typeof value === 'string' ? Buffer.from(value, 'latin1') : value,
      Buffer.from('\r\n', 'latin1'),
    );
  }
  parts.push(Buffer.from('\r\n', 'latin1'), body);
  const payload = Buffer.concat(parts);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (reset: boolean, error?: Error) => {
      if (settled) return;
      settled = true;
      const reply = parseReply(Buffer.concat(chunks), reset);
      if (reply.status === 0 && error !== undefined && chunks.length === 0) {
        // Nothing came back at all: let the caller see the transport error.
        reject(error);
        return;
      }
      resolve(reply);
    };
    const socket = connect(Number(port), hostname, () => {
      socket.write(payload, () => socket.end());
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (error) => finish(true, error));
    socket.on('close', () => finish(false));
  });
}

function parseReply(raw: Buffer, reset: boolean): RawReply {
  const text = raw.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    (headers[name] ??= []).push(line.slice(colon + 1).trim());
  }
  const bodyBytes =
    split === -1 ? Buffer.alloc(0) : raw.subarray(Buffer.byteLength(head, 'latin1') + 4);
  const bodyText = bodyBytes.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    body = undefined;
  }
  return { status: m === null ? 0 : Number(m[1]), headers, text: bodyText, body, reset };
}
