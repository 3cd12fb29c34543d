/**
 * The broker's framing and encoding rules, in process against the HTTPS fake provider: a body
 * the command sends chunked is forwarded chunked whatever the method (left unframed, a GET's
 * body would be read upstream as a second request that the next request's real key completes),
 * an encoded answer the redaction cannot read is 502, and byte ranges are not forwarded.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadProviders } from '../packages/cli/src/broker/providers.js';
import { startBroker, type Broker } from '../packages/cli/src/broker/server.js';
import {
  makeCertificate,
  REAL_KEY,
  startUpstream,
  writeProviders,
  type Upstream,
} from './helpers/broker-fixture.js';
import { tempDir } from './helpers/temp-dir.js';

const tmp = tempDir('agentpack-broker-framing-');
let upstream: Upstream;
let broker: Broker;

beforeAll(async () => {
  const cert = await makeCertificate(tmp.dir);
  upstream = await startUpstream(cert);
  const file = writeProviders(join(tmp.dir, 'providers.json'), upstream.origin, cert.cert);
  const provider = loadProviders(file).get('custom')!;
  broker = await startBroker([{ provider, key: Buffer.from(REAL_KEY) }], {
    maxRequests: null,
    log: () => {},
  });
}, 60_000);
afterAll(async () => {
  await broker?.close();
  await upstream?.close();
  tmp.remove();
});

/** Sends raw HTTP/1.1 bytes to the broker and answers everything it sends back until it closes. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Written, not ended: the broker answers, then closes (`connection: close`).
    const socket = connect(broker.port, '127.0.0.1', () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

it('forwards a chunked GET body chunked: the upstream sees one request, never a smuggled one', async () => {
  const before = upstream.seen.length;
  const smuggled =
    'POST /attacker/store HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ATTACKER\r\n' +
    'content-length: 120\r\n\r\n{"note":"';
  const chunk = `${Buffer.byteLength(smuggled).toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
  const first = await raw(
    `GET /custom/v1/echo HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${broker.placeholder}\r\n` +
      `transfer-encoding: chunked\r\nconnection: close\r\n\r\n${chunk}`,
  );
  expect(first).toMatch(/^HTTP\/1\.1 200/);
  // A second, ordinary request on the broker's kept-alive upstream connection.
  const second = await fetch(`http://127.0.0.1:${broker.port}/custom/v1/after`, {
    headers: { authorization: `Bearer ${broker.placeholder}` },
  });
  expect(second.status).toBe(200);
  const seen = upstream.seen.slice(before);
  expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['GET /v1/echo', 'GET /v1/after']);
  // The smuggled request stayed the first request's body, as sent.
  expect(seen[0]!.body).toBe(smuggled);
});

it('answers 502 for an encoded answer (the redaction could not read it) and drops byte ranges', async () => {
  upstream.routes.set('GET /v1/gzipped', (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/json' });
    res.end(Buffer.from([0x1f, 0x8b, 0x08, 0x00]));
  });
  const gz = await fetch(`http://127.0.0.1:${broker.port}/custom/v1/gzipped`, {
    headers: { authorization: `Bearer ${broker.placeholder}` },
  });
  expect(gz.status).toBe(502);
  const before = upstream.seen.length;
  await fetch(`http://127.0.0.1:${broker.port}/custom/v1/ranged`, {
    headers: { authorization: `Bearer ${broker.placeholder}`, range: 'bytes=0-3', 'if-range': 'x' },
  });
  const [ranged] = upstream.seen.slice(before);
  expect(ranged!.headers['range']).toBeUndefined();
  expect(ranged!.headers['if-range']).toBeUndefined();
});
