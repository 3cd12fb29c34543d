/**
 * `run exec --broker` end to end, as documented: the built CLI as a process, the real service
 * (an agent's secret read sealed by the host's enrolled device), an HTTPS fake upstream with its
 * own certificate trusted only through the providers file's `ca_file`, and a real command
 * (test/fixtures/broker-child.cjs) that calls the broker with the placeholder it was given and
 * reports what it saw and what it holds. Needs `npm run build` first.
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  makeCertificate,
  REAL_KEY,
  startUpstream,
  startWorld,
  writeProviders,
  type Upstream,
  type World,
} from './helpers/broker-fixture.js';
import { killLiveProcesses, runNode } from './helpers/cli-process.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = join(root, 'test/fixtures/broker-child.cjs');
const MAX_REQUESTS = 25;

afterEach(killLiveProcesses);

const tmp = tempDir('agentpack-cli-broker-fwd-');
let upstream: Upstream;
let world: World;
let cert: { key: string; cert: string };

/** Resolves when the child acknowledged the stream's first event. */
let acked: () => void = () => undefined;

beforeAll(async () => {
  if (!existsSync(join(root, 'packages/cli/lib/broker/server.js'))) {
    throw new Error('packages/cli/lib is not built: run npm run build before these tests');
  }
  cert = await makeCertificate(tmp.dir);
  upstream = await startUpstream(cert);
  world = await startWorld(tmp.dir);
  const { routes } = upstream;
  routes.set('GET /v1/redirect', (_req, res) => {
    res.writeHead(302, { location: 'https://elsewhere.example/next' }).end();
  });
  routes.set('GET /v1/echo-key', (_req, res) => {
    // The key split across two writes, each flushed, and in a header.
    res.writeHead(200, { 'content-type': 'text/plain', 'x-echo': `key=${REAL_KEY}` });
    res.write(`before ${REAL_KEY.slice(0, 9)}`, () => res.end(`${REAL_KEY.slice(9)} after`));
  });
  routes.set('GET /v1/stream', (_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: one\n\n');
    // The upstream is not done: it waits for the child to have seen "one".
    new Promise<void>((resolve) => (acked = resolve)).then(() => res.end('data: two\n\n'));
  });
  routes.set('POST /v1/ack', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    acked();
  });
  routes.set('POST /v1/upload', (req, res) => {
    let first = true;
    req.on('data', (chunk: Buffer) => {
      if (first) res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(`${first ? 'first:' : ' then:'}${chunk.toString()}`);
      first = false;
    });
    req.on('end', () => res.end(' end'));
  });
}, 60_000);
afterAll(async () => {
  await upstream?.close();
  await world?.svc.close();
  tmp.remove();
});

describe('run exec --broker against an HTTPS upstream', () => {
  it('swaps the placeholder for the real key upstream, refuses everything else, and streams', async () => {
    const run = await world.spawnRun(join(tmp.dir, 'run'));
    const providers = writeProviders(join(tmp.dir, 'providers.json'), upstream.origin, cert.cert);
    const execTmp = join(tmp.dir, 'exec-tmp');
    mkdirSync(execTmp, { mode: 0o700 });
    const res = await runNode(
      [
        'run',
        'exec',
        '--run-dir',
        run,
        '--device-dir',
        world.keys,
        '--broker',
        'custom=agentpack.secret://mail-bot/provider_key',
        '--broker-providers',
        providers,
        '--broker-max-requests',
        String(MAX_REQUESTS),
        '--',
        process.execPath,
        CHILD,
      ],
      { TMPDIR: execTmp },
      { timeoutMs: 60_000 },
    );
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout);
    const placeholder: string = report.held.env.CUSTOM_API_KEY;
    expect(placeholder).toMatch(/^apbk_[A-Za-z0-9_-]{43}$/);
    expect(report.held.env.CUSTOM_BASE_URL).toMatch(/^http:\/\/127\.0\.0\.1:[0-9]+\/custom\/v1$/);

    // The child never holds the real key, nor the device's directory.
    expect(res.stdout).not.toContain(REAL_KEY);
    expect(JSON.stringify(report.held)).not.toContain(world.keys);
    expect(report.held.environ).toContain(placeholder);
    expect(report.held.files).toEqual([]);

    // Allowed: the real key upstream, in the auth header only; Host and credentials dropped.
    expect(report.ok.status).toBe(200);
    const first = upstream.seen.find((s) => s.url.startsWith('/v1/chat'))!;
    expect(first.method).toBe('POST');
    expect(first.url).toBe('/v1/chat?x=1');
    expect(first.body).toBe('{"model":"m","messages":[]}');
    expect(first.headers['authorization']).toBe(`Bearer ${REAL_KEY}`);
    expect(first.headers['host']).toBe(new URL(upstream.origin).host);
    for (const dropped of [
      'x-api-key',
      'x-drop-me',
      'te',
      'proxy-authorization',
      'cookie',
      'x-agentpack-run',
    ]) {
      expect(first.headers[dropped], dropped).toBeUndefined();
    }
    expect(first.headers['content-type']).toBe('application/json');
    for (const seen of upstream.seen) {
      const others = Object.entries(seen.headers).filter(([name]) => name !== 'authorization');
      expect(JSON.stringify(others)).not.toContain(REAL_KEY);
      expect(JSON.stringify(seen)).not.toContain(placeholder);
    }
    expect(report.xApiKey).toBe(200);

    // Refused.
    expect(report.wrong).toBe(401);
    expect(report.wrongSameLength).toBe(401);
    expect(report.none).toBe(401);
    expect(report.prefix).toBe(404);
    expect(report.bare).toBe(404);
    expect(report.dots).toBe(404);
    expect(report.otherProvider).toBe(404);
    expect(report.absolute).toMatch(/^HTTP\/1\.1 400/);
    expect(report.connect).toMatch(/^HTTP\/1\.1 400/);
    expect(upstream.seen.some((s) => /models|admin/.test(s.url) && s.url !== '/v1/models')).toBe(
      false,
    );

    // A redirect comes back as it is, never followed.
    expect(report.redirect.status).toBe(302);
    expect(report.redirect.headers.location).toBe('https://elsewhere.example/next');
    expect(upstream.seen.filter((s) => s.url === '/v1/redirect')).toHaveLength(1);
    expect(upstream.seen.some((s) => s.url === '/next')).toBe(false);

    // An echoed key reaches the child as the placeholder, in a header and across chunks.
    expect(report.echo.headers['x-echo']).toBe(`key=${placeholder}`);
    expect(report.echo.body).toBe(`before ${placeholder} after`);

    // Streams: "one" reached the child while the upstream was still waiting to send "two".
    expect(report.stream).toEqual([
      'status 200 text/event-stream',
      'data: one',
      'ack 200',
      'data: two',
    ]);
    expect(report.upload).toBe('first:part1 then:part2 end');

    // The cap: request N+1 is 429.
    expect(report.cap).toEqual({ status: 429, before: MAX_REQUESTS });

    // One log line per request: provider, method, path without query, status, bytes, ms.
    const lines = res.stderr.split('\n').filter((l) => l.includes(' broker: '));
    expect(lines).toHaveLength(MAX_REQUESTS + 1);
    const chat = /^agentpack-identity broker: custom POST \/custom\/v1\/chat 200 \d+B \d+ms$/;
    expect(lines.filter((l) => chat.test(l))).toHaveLength(1);
    expect(lines.filter((l) => / 401 /.test(l))).toHaveLength(3);
    expect(lines.at(-1)).toMatch(/ custom GET \/custom\/v1\/models 429 \d+B \d+ms$/);
    expect(res.stderr).not.toContain(REAL_KEY);
    expect(res.stderr).not.toContain(placeholder);
    expect(res.stderr).not.toContain('x=1');
  }, 90_000);
});
