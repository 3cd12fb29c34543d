/**
 * What the credential broker tests share: an HTTPS fake upstream on loopback with its own
 * self-signed certificate (made here by the `openssl` binary, under a deadline; trusted only
 * through a providers file's `ca_file`), and the real service with an agent, its secret, an
 * enrolled host device (the CLI's `device keygen` / `device enroll` as processes) and a run
 * (`run spawn`).
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runNode, runProcess } from './cli-process.js';
import { startTestService, type TestService } from './service.js';

/** The real key of the tests: long enough that a split across chunks is a real split. */
export const REAL_KEY = 'sk-real-provider-key-Vb39QxLm27Pz81Kd';

/** A self-signed certificate for 127.0.0.1 (its key and PEM), made by openssl. */
export async function makeCertificate(dir: string): Promise<{ key: string; cert: string }> {
  const key = join(dir, 'upstream.key');
  const cert = join(dir, 'upstream.pem');
  const res = await runProcess(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=agentpack-broker-test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { env: { PATH: process.env['PATH'] ?? '' }, timeoutMs: 20_000 },
  );
  if (res.code !== 0) throw new Error(`openssl failed: ${res.stderr}`);
  return { key, cert };
}

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Route = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export interface Upstream {
  origin: string;
  seen: Seen[];
  routes: Map<string, Route>;
  close(): Promise<void>;
}

/** The fake provider: records each request, answers by route (`METHOD /path`), else echoes. */
export async function startUpstream(tls: { key: string; cert: string }): Promise<Upstream> {
  const { readFileSync } = await import('node:fs');
  const seen: Seen[] = [];
  const routes = new Map<string, Route>();
  const server: Server = createServer(
    { key: readFileSync(tls.key), cert: readFileSync(tls.cert) },
    (req, res) => {
      const route = routes.get(`${req.method} ${(req.url ?? '').split('?')[0]}`);
      const record: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: '',
      };
      seen.push(record);
      // A streaming route answers before the body ends: it reads it itself.
      if (route !== undefined && req.headers['x-test-stream'] === '1') {
        return route(req, res, '');
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        record.body = Buffer.concat(chunks).toString('utf8');
        if (route !== undefined) return route(req, res, record.body);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, method: req.method, url: req.url, body: record.body }));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A providers file with one provider `custom` at `origin`, trusting `ca` when given. */
export function writeProviders(
  file: string,
  origin: string,
  ca: string | null,
  extra: Record<string, unknown> = {},
): string {
  const custom = {
    origin,
    path_prefix: '/v1',
    auth_header: 'authorization',
    auth_format: 'Bearer {key}',
    base_url_env: ['CUSTOM_BASE_URL'],
    key_env: ['CUSTOM_API_KEY'],
    ...(ca === null ? {} : { ca_file: ca }),
    ...extra,
  };
  writeFileSync(file, JSON.stringify({ providers: { custom } }));
  return file;
}

export interface World {
  svc: TestService;
  /** The host's enrolled device directory. */
  keys: string;
  /** A fresh run's directory (run spawn). */
  spawnRun(out: string): Promise<string>;
}

/**
 * The service, agent `mail-bot` with the brokered secret `provider_key` = {@link REAL_KEY}, an
 * enrolled host device, and runs that may `secrets/get` it (and are still refused: brokered).
 */
export async function startWorld(dir: string): Promise<World> {
  const svc = await startTestService();
  const created = await svc.post(
    '/agents/create',
    { agent_id: 'mail-bot', display_name: 'm' },
    svc.bridge,
  );
  expect(created.status).toBe(201);
  const put = await svc.post(
    '/secrets/put',
    { agent_id: 'mail-bot', name: 'provider_key', value: REAL_KEY, brokered: true },
    svc.bridge,
  );
  expect(put.status, put.text).toBe(200);
  const keys = join(dir, 'host-keys');
  const keygen = await runNode(['device', 'keygen', '--out', keys]);
  expect(keygen.code, keygen.stderr).toBe(0);
  const enrollment = await svc.post(
    '/device/enrollments/create',
    { agent_id: 'mail-bot', expected_fingerprint: JSON.parse(keygen.stdout).fingerprint },
    svc.bridge,
  );
  expect(enrollment.status, enrollment.text).toBe(201);
  const enroll = await runNode([
    'device',
    'enroll',
    '--url',
    svc.url,
    '--code',
    enrollment.body.code,
    '--keys',
    keys,
  ]);
  expect(enroll.code, enroll.stderr).toBe(0);
  return {
    svc,
    keys,
    async spawnRun(out) {
      const res = await runNode([
        'run',
        'spawn',
        '--url',
        svc.url,
        '--device-key-file',
        join(keys, 'device-key'),
        '--task',
        'broker test',
        '--scope',
        'secrets/get:provider_key',
        '--ttl',
        '300',
        '--out',
        out,
      ]);
      expect(res.code, res.stderr).toBe(0);
      return out;
    },
  };
}
