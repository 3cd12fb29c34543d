// The load generator, run as its own process so it never shares a CPU queue with the server's
// event loop: `node bench/load.mjs '<json>'`. Prints autocannon's summary as one JSON line.
// Config: {url, path, method, headers, body, connections, duration, tokensFile?, signWith?}.
// With tokensFile, each request carries the next token of the file (fresh tokens); with
// signWith (an Ed25519 seed, base64url), each request is signed as an enrolled device's.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { ed25519PrivateKeyObject, signRequest } from '@agentpack-identity/protocol';

const config = JSON.parse(process.argv[2]);
const tokens = config.tokensFile
  ? readFileSync(config.tokensFile, 'utf8').trim().split('\n')
  : null;
let next = 0;
// With signWith, every request is signed afresh (new nonce, current time) by the device key,
// the way an enrolled device calls; the signing cost is the load generator's, not the server's.
const signingKey = config.signWith
  ? ed25519PrivateKeyObject(Buffer.from(config.signWith, 'base64url'))
  : null;
const body = config.body === undefined ? undefined : Buffer.from(config.body);

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
      ...(signingKey === null
        ? {}
        : {
            setupRequest(req) {
              const headers = signRequest({
                method: config.method,
                path: config.path,
                body,
                signingSeed: signingKey,
                nowMs: Date.now(),
              });
              return { ...req, headers: { ...req.headers, ...headers } };
            },
          }),
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
