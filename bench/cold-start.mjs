// Cold start: a fresh process imports functions/dist/index.js and answers its first request,
// the way a new Cloud Functions instance does. Five runs per store, median reported.
// (Firestore: firebase-admin is loaded at init, but no call reaches the network for /healthz.)
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(
  `cold start (median of ${RUNS}): import of functions/dist/index.js → first answered request`,
);
for (const store of ['sqlite', 'firestore']) {
  const dataDir = mkdtempSync(join(tmpdir(), 'agentpack-cold-'));
  const samples = [];
  for (let i = 0; i < RUNS; i++) {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(here, 'cold-start-child.mjs'), '/healthz'],
      {
        env: {
          PATH: process.env.PATH,
          AGENTPACK_STORE: store,
          AGENTPACK_DATA_DIR: dataDir,
          AGENTPACK_BRIDGE_KEYS: 'bench-bridge-key-0123456789abcdefghijklmnop',
          AGENTPACK_SECRETS_KEK: randomBytes(32).toString('base64url'),
          GCLOUD_PROJECT: 'demo-bench',
          FIRESTORE_EMULATOR_HOST: '127.0.0.1:9',
        },
      },
    );
    samples.push(JSON.parse(stdout.trim()));
  }
  rmSync(dataDir, { recursive: true, force: true });
  const imp = median(samples.map((s) => s.import_ms));
  const first = median(samples.map((s) => s.first_request_ms));
  console.log(
    `${store.padEnd(10)} import ${imp.toFixed(0)} ms, first answer ${first.toFixed(0)} ms (goal ≤ 300 ms)`,
  );
}
