// One cold start, measured inside a fresh process: from `import('functions/dist/index.js')` to
// the end of the first answered request, served through node:http the way the Functions
// Framework hands requests to the exported function. Prints {import_ms, first_request_ms}.
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

const path = process.argv[2] ?? '/healthz';
const t0 = performance.now();
const { identity } = await import('../functions/dist/index.js');
const t1 = performance.now();
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    req.rawBody = Buffer.concat(chunks);
    identity(req, res);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const res = await fetch(`http://127.0.0.1:${server.address().port}${path}`);
await res.text();
const t2 = performance.now();
if (res.status !== 200) throw new Error(`first request answered ${res.status}`);
process.stdout.write(`${JSON.stringify({ import_ms: t1 - t0, first_request_ms: t2 - t0 })}\n`);
server.close();
process.exit(0);
