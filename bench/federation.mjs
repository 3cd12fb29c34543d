// Federation phase of the benchmark: run spawning and workload token exchange at machine speed,
// against `/agents/get` and a bare node:http floor, in one run, with the load generator
// (autocannon, bench/load.mjs) in a second process on loopback. `/runs/spawn` (device key) and
// `/auth/exchange` (a subject token of a pinned issuer, ES256 and RS256: no network on the
// path) each make a run and sign its ES256 run token; every request carries a fresh run public
// key (pre-generated, one JSON body a line).
//
// Runs pile up, and the live-run cap check of every spawn reads the agent's live runs in the
// spawn's transaction, so:
// - each spawning case makes its runs for agents of its own that hold no run when it starts
//   (the warm-ups use other agents), and the rate per second within the case is printed;
// - the main table puts all of a case's runs on one agent; a second table spreads them over
//   BENCH_FED_AGENTS agents (device keys in turn, or one role per agent), which keeps the cap
//   read small: the spawn path itself;
// - then /runs/spawn for one agent seeded with many live runs (copies of a real run written
//   straight into the store: spawning that many over HTTP would take minutes);
// - and the in-process cost of the pieces (signatures, the run key check, the cap read, a
//   transaction).
// Writes bench/results/federation.json. Knobs: BENCH_FED_SECONDS (or BENCH_HTTP_SECONDS; 5 s a
// case), BENCH_CONNECTIONS (10), BENCH_FED_TTL_SECONDS (900: ttl_seconds of every run made),
// BENCH_FED_AGENTS (100; 0 skips the spread table), BENCH_FED_SEEDED (live runs seeded,
// "1000,10000"; "" skips), BENCH_FED_SEEDED_SECONDS (2). Run with `npm run bench`.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { signingKeyProblem } from '@agentpack-identity/protocol';
import { createApp } from '../functions/lib/app.js';
import { loadConfig } from '../functions/lib/config/config.js';
import { startServer } from '../functions/lib/local/server.js';

const here = dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_FED_SECONDS ?? process.env.BENCH_HTTP_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const TTL = Number(process.env.BENCH_FED_TTL_SECONDS ?? 900);
const SPREAD = Number(process.env.BENCH_FED_AGENTS ?? 100);
const SEEDED = (process.env.BENCH_FED_SEEDED ?? '1000,10000')
  .split(',')
  .filter((n) => n.trim() !== '')
  .map(Number);
const SEEDED_SECONDS = Number(process.env.BENCH_FED_SEEDED_SECONDS ?? 2);
// Bodies prepared for a measured case: its warm-up's rate × the duration × this margin.
const MARGIN = 1.6;
const WARM_BODIES = 6_000;
const BRIDGE = 'bench-bridge-key-0123456789abcdefghijklmnop';
const ISSUER = 'https://ci.bench.example';
const SUBJECT_AUD = 'https://github.com/acme';
const quietLogger = { info() {}, warn() {}, error() {} };

// Asynchronous on purpose: the servers under test live in this process's event loop.
async function load(config) {
  const { stdout: out } = await promisify(execFile)(
    process.execPath,
    [join(here, 'load.mjs'), JSON.stringify(config)],
    { encoding: 'utf8', maxBuffer: 1 << 22 },
  );
  const result = JSON.parse(out.trim().split('\n').pop());
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || result.bodiesRanOut) {
    throw new Error(
      `${config.path}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts${result.bodiesRanOut ? `, ran out of bodies (${result.bodiesSent} sent)` : ''}`,
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

// The service, as `npm start` builds it, on a fresh data dir (the run-token signing key is the
// local key file, created there on first start).
const dataDir = mkdtempSync(join(tmpdir(), 'agentpack-bench-fed-'));
const config = loadConfig(
  { AGENTPACK_DATA_DIR: dataDir, AGENTPACK_BRIDGE_KEYS: BRIDGE },
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
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};
const bridge = { 'x-agentpack-key': BRIDGE };
const json = { 'content-type': 'application/json' };

// Room for every run the benchmark makes for one agent.
await post('/settings/set', { key: 'runs.max_active_per_agent', value: 100_000 }, bridge);
if (TTL > 900) await post('/settings/set', { key: 'runs.max_ttl_seconds', value: TTL }, bridge);

// A trusted issuer with pinned keys: one ES256 and one RS256 key.
const es = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rs = generateKeyPairSync('rsa', { modulusLength: 2048 });
await post(
  '/issuers/put',
  {
    issuer: ISSUER,
    jwks: {
      keys: [
        { ...es.publicKey.export({ format: 'jwk' }), kid: 'es-1', alg: 'ES256', use: 'sig' },
        { ...rs.publicKey.export({ format: 'jwk' }), kid: 'rs-1', alg: 'RS256', use: 'sig' },
      ],
    },
  },
  bridge,
);

// One GitHub-Actions-shaped subject token per alg, reused by every exchange (the exchange
// allows replay within the token's life), living past the benchmark.
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
function mintSubject(alg, kid, privateKey) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg, typ: 'JWT', kid })}.${b64({
    iss: ISSUER,
    sub: 'repo:acme/app:ref:refs/heads/main',
    aud: SUBJECT_AUD,
    repository: 'acme/app',
    repository_owner: 'acme',
    ref: 'refs/heads/main',
    jti: randomBytes(8).toString('hex'),
    iat: now,
    nbf: now,
    exp: now + 3600,
  })}`;
  const signature =
    alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', Buffer.from(input), privateKey);
  return `${input}.${signature.toString('base64url')}`;
}
const subjects = {
  ES256: mintSubject('ES256', 'es-1', es.privateKey),
  RS256: mintSubject('RS256', 'rs-1', rs.privateKey),
};

// A group of agents: `name` alone, or `name-0` … `name-(n-1)`; with device keys (to spawn) or
// with one role each, of the same name (to exchange for).
async function inParallel(items, fn, width = 8) {
  const out = [];
  for (let i = 0; i < items.length; i += width) {
    out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  }
  return out;
}
async function group(name, n, kind) {
  const names = n === 1 ? [name] : Array.from({ length: n }, (_, i) => `${name}-${i}`);
  await inParallel(names, (agent) =>
    post('/agents/create', { display_name: agent, agent_id: agent }, bridge),
  );
  if (kind === 'device') {
    const keys = await inParallel(names, (agent) =>
      post('/device/issue', { agent_id: agent }, bridge),
    );
    return { names, headersList: keys.map((k) => ({ 'x-agentpack-device-key': k.device_key })) };
  }
  await inParallel(names, (agent) =>
    post(
      '/roles/put',
      {
        role: agent,
        issuer: ISSUER,
        audiences: [SUBJECT_AUD],
        bound_claims: { sub: 'repo:acme/*:ref:refs/heads/main', repository_owner: 'acme' },
        agent_id: agent,
        scope: ['secrets/get:deploy_key', 'runs/spawn'],
        ttl_seconds: TTL,
      },
      bridge,
    ),
  );
  return { names };
}

// A fresh run key per request: a raw Ed25519 public key (the last 32 bytes of its SPKI DER).
let bodyFiles = 0;
function bodiesFile(count, bodyOf) {
  const lines = [];
  for (let i = 0; i < count; i++) {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    lines.push(JSON.stringify(bodyOf(raw.toString('base64url'), i)));
  }
  const file = join(dataDir, `bodies-${bodyFiles++}.jsonl`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
const spawnBody = (public_key) => ({
  task: 'bench',
  scope: ['secrets/get:deploy_key'],
  ttl_seconds: TTL,
  public_key,
});
// Exchanges take the agents' roles in turn.
const exchangeBody = (names, alg) => (public_key, i) => ({
  role: names[i % names.length],
  subject_token: subjects[alg],
  public_key,
  ttl_seconds: TTL,
});

// A spawning case over a group: its request, and how each of its bodies is made.
function spawning(kind, g) {
  return kind === 'device'
    ? {
        request: { url, path: '/runs/spawn', method: 'POST', headers: json },
        headersList: g.headersList,
        bodyOf: spawnBody,
      }
    : {
        request: { url, path: '/auth/exchange', method: 'POST', headers: json },
        bodyOf: exchangeBody(g.names, kind),
      };
}
const KINDS = [
  ['/runs/spawn (device key)', 'device', 'spawn'],
  ['/auth/exchange (ES256 subject)', 'ES256', 'es256'],
  ['/auth/exchange (RS256 subject)', 'RS256', 'rs256'],
];
// [name, {request, headersList?, bodyOf?, warm?: the same over the warm-up's own agents}]
async function spawningCases(n, suffix) {
  const out = [];
  for (const [name, kind, short] of KINDS) {
    const real = spawning(kind, await group(`${short}${suffix}`, n, kind));
    const warm = spawning(kind, await group(`warm-${short}${suffix}`, n, kind));
    out.push([n === 1 ? name : `${name}, ${n} agents`, { ...real, warm }]);
  }
  return out;
}

const getter = (await group('bench-get', 1, 'device')).headersList[0];
const cases = [
  [
    'node:http floor',
    { request: { url: floorUrl, path: '/rpc', method: 'POST', headers: json, body: '{}' } },
  ],
  [
    '/agents/get (device key)',
    {
      request: {
        url,
        path: '/agents/get',
        method: 'POST',
        headers: { ...json, ...getter },
        body: '{}',
      },
    },
  ],
  ...(await spawningCases(1, '')),
];
const spreadCases = SPREAD > 1 ? await spawningCases(SPREAD, '-spread') : [];

// Warm up every path for a second (a spawning case on its warm-up agents, at a rate that sizes
// the bodies of the measured case), then measure, all with the same connections and duration.
const loadOf = (c, count, duration) => ({
  ...c.request,
  ...(c.headersList === undefined ? {} : { headersList: c.headersList }),
  ...(c.bodyOf === undefined ? {} : { bodiesFile: bodiesFile(count, c.bodyOf) }),
  connections: CONNECTIONS,
  duration,
});
async function measure(list) {
  const rates = [];
  for (const [, c] of list) {
    rates.push((await load(loadOf(c.warm ?? c, WARM_BODIES, 1))).total);
  }
  const rows = [];
  for (const [i, [name, c]] of list.entries()) {
    const count = Math.ceil(rates[i] * DURATION * MARGIN) + 10 * CONNECTIONS;
    rows.push([name, await load(loadOf(c, count, DURATION))]);
  }
  return rows;
}
const rows = await measure(cases);
const spreadRows = await measure(spreadCases);

// Live runs of an agent now: what the cap check of its next spawn reads.
const liveQuery = (agent) =>
  app.store.query('runs', {
    where: ['live_agent_id', agent],
    orderBy: 'expires_at',
    after: new Date().toISOString(),
    limit: 100_000,
  });
// A run made over HTTP, as the model of the documents written straight into the store.
const [template] = await app.store.query('runs', {
  where: ['agent_id', 'spawn'],
  orderBy: 'run_id',
  limit: 1,
});
// Unended runs, expired ones included: the rows the cap query scans before it filters.
const unended = async (agent) =>
  (
    await app.store.query('runs', {
      where: ['live_agent_id', agent],
      orderBy: 'expires_at',
      limit: 100_000,
    })
  ).length;
const liveRuns = {};
const unendedRuns = {};
for (const agent of ['spawn', 'es256', 'rs256']) {
  liveRuns[agent] = (await liveQuery(agent)).length;
  unendedRuns[agent] = await unended(agent);
}
if (SPREAD > 1) {
  for (const agent of ['spawn', 'es256', 'rs256']) {
    const counts = await inParallel(
      Array.from({ length: SPREAD }, (_, i) => `${agent}-spread-${i}`),
      async (a) => (await liveQuery(a)).length,
    );
    liveRuns[`${agent}-spread-*`] = { min: Math.min(...counts), max: Math.max(...counts) };
  }
}

// /runs/spawn for one agent already holding many live runs.
const seededRows = [];
if (SEEDED.length > 0) {
  const seeded = await group('seeded', 1, 'device');
  const expires_at = new Date(Date.now() + 3_600_000).toISOString();
  // No seeded agent spawns faster than a fresh one in its first second.
  const count = Math.ceil(rows[2][1].perSecond[0] * SEEDED_SECONDS * MARGIN) + 10 * CONNECTIONS;
  let id = 0;
  for (const target of SEEDED) {
    const missing = target - (await liveQuery('seeded')).length;
    await app.store.transact(async (tx) => {
      for (let i = 0; i < missing; i++, id++) {
        const runId = `run_seeded${String(id).padStart(12, '0')}`;
        tx.set('runs', runId, {
          ...template.doc,
          run_id: runId,
          root_run_id: runId,
          lineage: [runId],
          agent_id: 'seeded',
          live_agent_id: 'seeded',
          public_key: `seeded-${id}`,
          list_key: `${template.doc.created_at}|${runId}`,
          expires_at,
        });
      }
    });
    const before = (await liveQuery('seeded')).length;
    const c = spawning('device', seeded);
    seededRows.push([before, await load(loadOf(c, count, SEEDED_SECONDS))]);
  }
}

// The pieces, in this process, one at a time (µs per call; median of 5 rounds).
function micro(fn, n) {
  for (let i = 0; i < Math.min(n, 100); i++) fn(i);
  const rounds = [];
  for (let round = 0; round < 5; round++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    rounds.push(Number(process.hrtime.bigint() - t) / 1000 / n);
  }
  return rounds.sort((a, b) => a - b)[2];
}
async function microAsync(fn, n) {
  for (let i = 0; i < Math.min(n, 3); i++) await fn(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - t) / 1000 / n;
}
const tokenInput = Buffer.from('x'.repeat(600));
const esSig = sign('sha256', tokenInput, { key: es.privateKey, dsaEncoding: 'ieee-p1363' });
const rsSig = sign('sha256', tokenInput, rs.privateKey);
const runKeys = Array.from({ length: 500 }, () =>
  generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32),
);
let written = 0;
const costs = {
  'ES256 sign (run token, P-256)': micro(
    () => sign('sha256', tokenInput, { key: es.privateKey, dsaEncoding: 'ieee-p1363' }),
    2000,
  ),
  'ES256 verify (subject token)': micro(
    () => verify('sha256', tokenInput, { key: es.publicKey, dsaEncoding: 'ieee-p1363' }, esSig),
    2000,
  ),
  'RS256 verify (subject token, 2048-bit)': micro(
    () => verify('sha256', tokenInput, rs.publicKey, rsSig),
    2000,
  ),
  'run public key check (signingKeyProblem)': micro(
    (i) => signingKeyProblem(runKeys[i % runKeys.length]),
    500,
  ),
  'transaction: one run written, audited': await microAsync(
    () =>
      app.store.transact(async (tx) => {
        const runId = `run_micro${written++}`;
        tx.set('runs', runId, { ...template.doc, run_id: runId, live_agent_id: 'micro' });
        tx.audit({
          category: 'auth',
          action: 'run.spawn',
          actor: { kind: 'bridge' },
          target: { agent_id: 'micro', run_id: runId },
          at: new Date().toISOString(),
          details: {},
        });
      }),
    500,
  ),
};
for (const agent of ['get', 'spawn', ...(SEEDED.length > 0 ? ['seeded'] : [])]) {
  const live = (await liveQuery(agent)).length;
  const all = await unended(agent);
  const label = `${live} live runs${all > live ? ` (${all} unended)` : ''}`;
  costs[`live-cap read, ${label}`] = await microAsync(() => liveQuery(agent), 10);
}

const floorRps = rows[0][1].rps;
const getRps = rows[1][1].rps;
const cpu = cpus()[0]?.model ?? 'unknown cpu';
console.log(
  `node ${process.version}, ${availableParallelism()} cpu(s) (${cpu}), ${CONNECTIONS} connections, ${DURATION} s per case, runs of ${TTL} s, autocannon in its own process`,
);
const line = (name, r, seconds) =>
  console.log(
    `${name.padEnd(46)}${Math.round(r.rps).toLocaleString('en-US').padStart(8)}${(r.rps / floorRps).toFixed(3).padStart(8)}${(r.rps / getRps).toFixed(3).padStart(8)}${String(r.p50).padStart(7)}${String(r.p99).padStart(7)}  ${r.perSecond.slice(0, seconds).join(' ')}`,
  );
console.log(
  `${'case'.padEnd(46)}${'req/s'.padStart(8)}${'×floor'.padStart(8)}${'×get'.padStart(8)}${'p50'.padStart(7)}${'p99'.padStart(7)}  per second`,
);
for (const [name, r] of [...rows, ...spreadRows]) line(name, r, DURATION);
for (const [before, r] of seededRows) {
  line(`/runs/spawn, one agent with ${before} live runs`, r, SEEDED_SECONDS);
}
console.log(`live runs after the cases: ${JSON.stringify(liveRuns)}`);
if (TTL < 60) console.log(`unended (expired included): ${JSON.stringify(unendedRuns)}`);
for (const [k, v] of Object.entries(costs)) {
  console.log(`${k.padEnd(46)}${v.toFixed(1).padStart(10)} µs`);
}
const rowsOf = (list) =>
  Object.fromEntries(
    list.map(([n, r]) => [n, { ...r, ratio: r.rps / floorRps, ratioToGet: r.rps / getRps }]),
  );
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(
  join(here, 'results', 'federation.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpu,
      cpus: availableParallelism(),
      connections: CONNECTIONS,
      duration: DURATION,
      ttl_seconds: TTL,
      rows: rowsOf(rows),
      spread: { agents: SPREAD, rows: rowsOf(spreadRows) },
      seeded: seededRows.map(([live, r]) => ({
        live_runs_before: live,
        duration: SEEDED_SECONDS,
        ...r,
      })),
      live_runs_after_cases: liveRuns,
      unended_runs_after_cases: unendedRuns,
      microseconds: costs,
    },
    null,
    2,
  )}\n`,
);

floor.close();
server.closeAllConnections();
server.close();
await app.close();
rmSync(dataDir, { recursive: true, force: true });
