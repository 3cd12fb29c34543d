// Capability token verification throughput: our verifier (cache off, and cache on with the same
// token presented again), raw node:crypto Ed25519 verify of the same signature with a prebuilt
// KeyObject (the ceiling), and jose's jwtVerify with an imported key (the usual alternative).
// Run with `npm run bench` (it builds first). Writes bench/results/tokens.json (git-ignored).
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { importJWK, jwtVerify } from 'jose';
import { generateSigningKey, mintCapabilityToken } from '@agentpack-identity/protocol';
import { loadPinnedKeys } from '../functions/lib/tokens/pinned-keys.js';
import { createTokenVerifier } from '../functions/lib/tokens/verify.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const WARMUP_MS = 300;
const ISSUER = 'agentpack-identity';
const AUDIENCE = 'agentpack';

const { privateJwk, publicJwk } = generateSigningKey();
const nowMs = Date.now();
const { token } = mintCapabilityToken({
  privateJwk,
  sub: 'agent-bench',
  scope: ['secrets/get:openai_key', 'secrets/list'],
  ttlSeconds: 300,
  issuer: ISSUER,
  audience: AUDIENCE,
  nowMs,
});
const keys = loadPinnedKeys(JSON.stringify({ keys: [publicJwk] }));
const options = { keys, issuer: ISSUER, audience: AUDIENCE, maxTtlSeconds: 900 };
const uncached = createTokenVerifier({ ...options, cacheSize: 0 });
const cached = createTokenVerifier(options);

const lastDot = token.lastIndexOf('.');
const signingInput = Buffer.from(token.slice(0, lastDot), 'latin1');
const signature = Buffer.from(token.slice(lastDot + 1), 'base64url');
const keyObject = createPublicKey({ key: publicJwk, format: 'jwk' });
const joseKey = await importJWK(publicJwk, 'EdDSA');
const joseOptions = {
  issuer: ISSUER,
  audience: AUDIENCE,
  typ: 'agentpack-cap+jwt',
  algorithms: ['EdDSA'],
  clockTolerance: 30,
  maxTokenAge: 900,
  currentDate: new Date(nowMs),
};

// A request carries the token as a fresh string each time (read from its header bytes), so the
// cached case makes one per call: the cache must hash and compare the whole text every time.
const tokenBytes = Buffer.from(token, 'latin1');

// Each case returns true for a valid token; a false answer aborts the run (no silent no-ops).
const cases = {
  'ours (cache off)': () => uncached.verify(token, nowMs).ok,
  'ours (cache on, same token)': () => cached.verify(tokenBytes.toString('latin1'), nowMs).ok,
  'raw crypto.verify': () => cryptoVerify(null, signingInput, keyObject, signature),
  'jose jwtVerify': async () => (await jwtVerify(token, joseKey, joseOptions)).payload !== null,
};

async function measure(fn, ms) {
  const isAsync = fn.constructor.name === 'AsyncFunction';
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 64; i++) {
      const ok = isAsync ? await fn() : fn();
      if (ok !== true) throw new Error('a valid token did not verify');
    }
    ops += 64;
    elapsed = performance.now() - start;
  }
  return (ops * 1000) / elapsed;
}

const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (const fn of Object.values(cases)) await measure(fn, WARMUP_MS);
// Interleave the cases round by round so that a noisy moment hurts them all alike.
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn] of Object.entries(cases)) samples[name].push(await measure(fn, ROUND_MS));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = Object.fromEntries(Object.entries(samples).map(([n, xs]) => [n, median(xs)]));

const width = Math.max(...Object.keys(results).map((n) => n.length));
console.log(
  `node ${process.version}, ${availableParallelism()} cpu(s) (${cpus()[0]?.model ?? '?'}), ` +
    `token ${token.length} chars, median of ${ROUNDS} × ${ROUND_MS} ms`,
);
console.log(`${'case'.padEnd(width)}  ${'ops/s'.padStart(10)}  ${'µs/op'.padStart(7)}`);
for (const [name, opsPerSec] of Object.entries(results)) {
  console.log(
    `${name.padEnd(width)}  ${Math.round(opsPerSec).toLocaleString('en-US').padStart(10)}  ` +
      `${(1e6 / opsPerSec).toFixed(2).padStart(7)}`,
  );
}
// Ratios are taken round by round (the cases of one round ran back to back), then the median:
// this cancels most of the machine's drift, which is larger than the differences measured.
const paired = (a, b) => median(samples[a].map((x, i) => x / samples[b][i]));
const ratios = {
  'ours/raw': paired('ours (cache off)', 'raw crypto.verify'),
  'ours/jose': paired('ours (cache off)', 'jose jwtVerify'),
  'raw/jose': paired('raw crypto.verify', 'jose jwtVerify'),
  'cached/raw': paired('ours (cache on, same token)', 'raw crypto.verify'),
};
console.log(
  `ours/raw ${ratios['ours/raw'].toFixed(3)} (goal ≥ 0.85) · ours/jose ${ratios['ours/jose'].toFixed(2)} ` +
    `(goal ≥ 1.5; ceiling raw/jose ${ratios['raw/jose'].toFixed(2)}) · cached/raw ${ratios['cached/raw'].toFixed(0)}`,
);

const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(
  new URL('tokens.json', dir),
  `${JSON.stringify({ node: process.version, cpus: availableParallelism(), at: new Date().toISOString(), opsPerSec: results, ratios }, null, 2)}\n`,
);
