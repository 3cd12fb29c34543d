// HTTP phase of the benchmark: the service's local server over SQLite against a bare node:http
// floor, in one run, with the load generator (autocannon) in a second process on loopback.
// Prints req/s as a ratio to the floor, p50 and p99. Run with `npm run bench` (builds first).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../functions/lib/app.js';
import { loadConfig } from '../functions/lib/config/config.js';
import { startServer } from '../functions/lib/local/server.js';
import { generateSigningKey, mintCapabilityToken } from '@agentpack-identity/protocol';
import { encodeRawKey, generateDeviceKeys, openSealed } from '@agentpack-identity/protocol';

const here = dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const BRIDGE = 'bench-bridge-key-0123456789abcdefghijklmnop';
const quietLogger = { info() {}, warn() {}, error() {} };

// Asynchronous on purpose: the servers under test live in this process's event loop.
async function load(config) {
  const { stdout: out } = await promisify(execFile)(
    process.execPath,
    [join(here, 'load.mjs'), JSON.stringify(config)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  const result = JSON.parse(out.trim().split('\n').pop());
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${config.path}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
  return result;
}

// The floor: node:http doing the least a JSON RPC server can (read the body, answer JSON).
const floor = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = '{"ok":true}';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
await new Promise((r) => floor.listen(0, '127.0.0.1', r));
const floorUrl = `http://127.0.0.1:${floor.address().port}`;

// The service, as `npm start` builds it, on a fresh data dir.
const dataDir = mkdtempSync(join(tmpdir(), 'agentpack-bench-'));
const { privateJwk, publicJwk } = generateSigningKey();
const config = loadConfig(
  {
    AGENTPACK_DATA_DIR: dataDir,
    AGENTPACK_BRIDGE_KEYS: BRIDGE,
    AGENTPACK_CAPABILITY_KEYS: JSON.stringify({ keys: [publicJwk] }),
  },
  { store: 'sqlite' },
);
const app = await createApp({ config, logger: quietLogger });
const { server, url } = await startServer(app.handler, quietLogger, { port: 0, host: '127.0.0.1' });
const post = async (path, body, headers) => {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
};
await post(
  '/agents/create',
  { display_name: 'bench', agent_id: 'bench-agent' },
  { 'x-agentpack-key': BRIDGE },
);
const { device_key } = await post(
  '/device/issue',
  { agent_id: 'bench-agent' },
  { 'x-agentpack-key': BRIDGE },
);
await post(
  '/secrets/put',
  { name: 'openai_key', value: 'sk-bench-0123456789abcdef' },
  { 'x-agentpack-device-key': device_key },
);

// An enrolled device: pinned sealing and signing keys.
const deviceKeys = generateDeviceKeys();
const { code } = await post(
  '/device/enrollments/create',
  { agent_id: 'bench-agent' },
  { 'x-agentpack-key': BRIDGE },
);
const enrollment = await post('/device/enroll', {
  code,
  sealing_public_key: encodeRawKey(deviceKeys.sealing.publicKey),
  signing_public_key: encodeRawKey(deviceKeys.signing.publicKey),
});
// The enrolled key comes sealed to the device's sealing key.
const enrolled = {
  device_key: Buffer.from(
    openSealed(
      Buffer.from(enrollment.sealed_device_key, 'base64url'),
      deviceKeys.sealing.publicKey,
      deviceKeys.sealing.privateKey,
    ),
  ).toString('utf8'),
};

const mint = () =>
  mintCapabilityToken({
    privateJwk,
    sub: 'bench-agent',
    scope: ['secrets/get:openai_key'],
    ttlSeconds: 900,
    issuer: 'agentpack-identity',
    audience: 'agentpack',
    nowMs: Date.now(),
  }).token;
const tokensFile = join(dataDir, 'tokens.txt');
writeFileSync(tokensFile, Array.from({ length: 40_000 }, mint).join('\n'));
const repeated = mint();

const json = { 'content-type': 'application/json' };
const getBody = JSON.stringify({ name: 'openai_key' });
const cases = [
  ['node:http floor', { url: floorUrl, path: '/rpc', method: 'POST', headers: json, body: '{}' }],
  ['GET /healthz', { url, path: '/healthz', method: 'GET' }],
  [
    '/agents/get (device key)',
    {
      url,
      path: '/agents/get',
      method: 'POST',
      headers: { ...json, 'x-agentpack-device-key': device_key },
      body: '{}',
    },
  ],
  [
    '/secrets/get (device key)',
    {
      url,
      path: '/secrets/get',
      method: 'POST',
      headers: { ...json, 'x-agentpack-device-key': device_key },
      body: getBody,
    },
  ],
  [
    '/secrets/get (signed request)',
    {
      url,
      path: '/secrets/get',
      method: 'POST',
      headers: { ...json, 'x-agentpack-device-key': enrolled.device_key },
      body: getBody,
      signWith: Buffer.from(deviceKeys.signing.privateKey).toString('base64url'),
    },
  ],
  [
    '/secrets/get (sealed)',
    {
      url,
      path: '/secrets/get',
      method: 'POST',
      headers: { ...json, 'x-agentpack-device-key': enrolled.device_key },
      body: JSON.stringify({ name: 'openai_key', seal: true }),
    },
  ],
  [
    '/secrets/get (fresh tokens)',
    { url, path: '/secrets/get', method: 'POST', headers: json, body: getBody, tokensFile },
  ],
  [
    '/secrets/get (repeated token)',
    {
      url,
      path: '/secrets/get',
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${repeated}` },
      body: getBody,
    },
  ],
];

// Warm up every path, then measure.
for (const [, c] of cases) await load({ ...c, connections: CONNECTIONS, duration: 1 });
const rows = [];
for (const [name, c] of cases)
  rows.push([name, await load({ ...c, connections: CONNECTIONS, duration: DURATION })]);

const floorRps = rows[0][1].rps;
const cpu = cpus()[0]?.model ?? 'unknown cpu';
console.log(
  `node ${process.version}, ${availableParallelism()} cpu(s) (${cpu}), ${CONNECTIONS} connections, ${DURATION} s per case, autocannon in its own process`,
);
console.log(
  `${'case'.padEnd(32)}${'req/s'.padStart(10)}${'× floor'.padStart(9)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}`,
);
for (const [name, r] of rows) {
  console.log(
    `${name.padEnd(32)}${Math.round(r.rps).toLocaleString('en-US').padStart(10)}${(r.rps / floorRps).toFixed(2).padStart(9)}${String(r.p50).padStart(8)}${String(r.p99).padStart(8)}`,
  );
}
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(
  join(here, 'results', 'http.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu, connections: CONNECTIONS, duration: DURATION, rows: Object.fromEntries(rows.map(([n, r]) => [n, { ...r, ratio: r.rps / floorRps }])) }, null, 2)}\n`,
);

floor.close();
server.closeAllConnections();
server.close();
await app.close();
rmSync(dataDir, { recursive: true, force: true });
