// Broker phase of the benchmark: the credential broker of `run exec --broker` (the built
// packages/cli/lib/broker/server.js) in front of a fake HTTPS provider on loopback (its own
// self-signed certificate, made by openssl, trusted through the provider's ca), against calling
// that provider directly, side by side in one run. The client is a second process: small JSON
// POSTs, one at a time for latency (p50/p99, interleaved direct/broker), then
// BENCH_BROKER_CONCURRENCY in flight for throughput. Run with `npm run bench` (builds first).
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startBroker } from '../packages/cli/lib/broker/server.js';

const REQUESTS = Number(process.env.BENCH_BROKER_REQUESTS ?? 2000);
const SECONDS = Number(process.env.BENCH_BROKER_SECONDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_BROKER_CONCURRENCY ?? 10);
const KEY = 'sk-bench-real-key-0123456789abcdefghijkl';

const dir = mkdtempSync(join(tmpdir(), 'agentpack-bench-broker-'));
try {
  execFileSync(
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
      join(dir, 'k.pem'),
      '-out',
      join(dir, 'c.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=bench',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore', timeout: 20_000 },
  );
  const cert = readFileSync(join(dir, 'c.pem'));
  const upstream = createServer({ key: readFileSync(join(dir, 'k.pem')), cert }, (req, res) => {
    const ok = req.headers.authorization === `Bearer ${KEY}`;
    req.resume();
    req.on('end', () => {
      const body = ok ? '{"id":"x","object":"chat.completion","ok":true}' : '{"error":"key"}';
      res.writeHead(ok ? 200 : 401, {
        'content-type': 'application/json',
        'content-length': body.length,
      });
      res.end(body);
    });
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const port = upstream.address().port;
  const provider = {
    name: 'bench',
    origin: `https://127.0.0.1:${port}`,
    hostname: '127.0.0.1',
    port,
    pathPrefix: '/v1',
    basePath: '/v1',
    authHeader: 'authorization',
    authFormat: 'Bearer {key}',
    baseUrlEnv: ['BENCH_BASE_URL'],
    keyEnv: ['BENCH_API_KEY'],
    ca: cert,
  };
  const broker = await startBroker([{ provider, key: Buffer.from(KEY) }], {
    maxRequests: null,
    log: () => {},
  });

  const client = `
    import http from 'node:http'; import https from 'node:https';
    const cfg = JSON.parse(process.argv[1]);
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    const targets = {
      direct: { mod: https, agent: new https.Agent({ keepAlive: true, ca: cfg.ca }), port: cfg.upstream,
        path: '/v1/chat/completions', auth: 'Bearer ' + cfg.key },
      broker: { mod: http, agent: new http.Agent({ keepAlive: true }), port: cfg.broker,
        path: '/bench/v1/chat/completions', auth: 'Bearer ' + cfg.placeholder },
    };
    const once = (t) => new Promise((resolve, reject) => {
      const start = process.hrtime.bigint();
      const req = t.mod.request({ host: '127.0.0.1', port: t.port, method: 'POST', path: t.path, agent: t.agent,
        headers: { authorization: t.auth, 'content-type': 'application/json', 'content-length': body.length } },
        (res) => { res.resume(); res.on('end', () => res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - start) / 1e6) : reject(new Error('HTTP ' + res.statusCode))); });
      req.on('error', reject); req.end(body);
    });
    const pct = (a, p) => a[Math.min(a.length - 1, Math.floor(a.length * p))];
    const out = {};
    for (const t of Object.values(targets)) for (let i = 0; i < 50; i++) await once(t); // warm-up
    const lat = { direct: [], broker: [] };
    for (let i = 0; i < cfg.requests; i++) for (const name of ['direct', 'broker']) lat[name].push(await once(targets[name]));
    for (const name of ['direct', 'broker']) {
      const a = lat[name].sort((x, y) => x - y);
      let done = 0; const end = Date.now() + cfg.seconds * 1000;
      const worker = async () => { while (Date.now() < end) { await once(targets[name]); done++; } };
      const t0 = Date.now(); await Promise.all(Array.from({ length: cfg.concurrency }, worker));
      out[name] = { p50: pct(a, 0.5), p99: pct(a, 0.99), rps: done / ((Date.now() - t0) / 1000) };
    }
    console.log(JSON.stringify(out));
    for (const t of Object.values(targets)) t.agent.destroy();
  `;
  const cfg = {
    ca: cert.toString(),
    upstream: port,
    broker: broker.port,
    key: KEY,
    placeholder: broker.placeholder,
    requests: REQUESTS,
    seconds: SECONDS,
    concurrency: CONCURRENCY,
  };
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', client, JSON.stringify(cfg)],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const r = JSON.parse(stdout.trim().split('\n').pop());
  await broker.close();
  await new Promise((res) => upstream.close(res));
  const ms = (v) => v.toFixed(3).padStart(8);
  console.log(
    `\nCredential broker (${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, Node ${process.version}; ` +
      `${REQUESTS} sequential POSTs each, then ${CONCURRENCY} in flight for ${SECONDS} s)`,
  );
  console.log('case      p50 ms   p99 ms    req/s');
  for (const name of ['direct', 'broker']) {
    console.log(
      `${name.padEnd(7)} ${ms(r[name].p50)} ${ms(r[name].p99)} ${r[name].rps.toFixed(0).padStart(8)}`,
    );
  }
  console.log(
    `broker adds p50 ${(r.broker.p50 - r.direct.p50).toFixed(3)} ms, p99 ${(r.broker.p99 - r.direct.p99).toFixed(3)} ms; ` +
      `throughput ${(r.broker.rps / r.direct.rps).toFixed(2)}x direct`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
