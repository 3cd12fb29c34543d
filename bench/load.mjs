// The load generator, run as its own process so it never shares a CPU queue with the server's
// event loop: `node bench/load.mjs '<json>'`. Prints autocannon's summary as one JSON line.
// Config: {url, path, method, headers, body, connections, duration, tokensFile?}. With
// tokensFile, each request carries the next token of the file (fresh tokens).
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const config = JSON.parse(process.argv[2]);
const tokens = config.tokensFile
  ? readFileSync(config.tokensFile, 'utf8').trim().split('\n')
  : null;
let next = 0;

const result = await autocannon({
  url: config.url,
  connections: config.connections,
  duration: config.duration,
  requests: [
    {
      method: config.method,
      path: config.path,
      headers: config.headers,
      body: config.body,
      ...(tokens === null
        ? {}
        : {
            setupRequest(req) {
              const token = tokens[next++ % tokens.length];
              return { ...req, headers: { ...req.headers, authorization: `Bearer ${token}` } };
            },
          }),
    },
  ],
});
process.stdout.write(
  `${JSON.stringify({
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    total: result.requests.total,
  })}\n`,
);
