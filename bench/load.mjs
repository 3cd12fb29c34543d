// The load generator, run as its own process so it never shares a CPU queue with the server's
// event loop: `node bench/load.mjs '<json>'`. Prints autocannon's summary as one JSON line.
// Config: {url, path, method, headers, body, connections, duration, tokensFile?, signWith?,
// bodiesFile?, headersList?}. With tokensFile, each request carries the next token of the file
// (fresh tokens); with signWith (an Ed25519 seed, base64url), each request is signed as an
// enrolled device's; with bodiesFile (one JSON body a line), each request sends the next body of
// the file (e.g. a fresh public key per spawn), and the summary says how many were sent and
// whether the file ran out (then bodies repeat from the start); with headersList (an array of
// header objects), each request adds the next one, in turn (e.g. device keys of many agents).
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
const bodies = config.bodiesFile
  ? readFileSync(config.bodiesFile, 'utf8').trim().split('\n')
  : null;
if (bodies !== null && signingKey !== null) {
  throw new Error('bodiesFile and signWith do not combine (the signature covers the body)');
}
let nextBody = 0;
const headersList = config.headersList ?? null;
if (headersList !== null && signingKey !== null) {
  throw new Error('headersList and signWith do not combine');
}
let nextHeaders = 0;

const request = {
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
};
if (bodies !== null || headersList !== null) {
  const inner = request.setupRequest;
  request.setupRequest = (req) => {
    const out = inner === undefined ? req : inner(req);
    return {
      ...out,
      ...(headersList === null
        ? {}
        : { headers: { ...out.headers, ...headersList[nextHeaders++ % headersList.length] } }),
      ...(bodies === null ? {} : { body: bodies[nextBody++ % bodies.length] }),
    };
  };
}
// Responses counted per second of the run (to see a trend within a case).
const perSecond = [];
const startMs = Date.now();
const instance = autocannon({
  url: config.url,
  connections: config.connections,
  duration: config.duration,
  requests: [request],
});
instance.on('response', () => {
  const second = Math.floor((Date.now() - startMs) / 1000);
  perSecond[second] = (perSecond[second] ?? 0) + 1;
});
const result = await instance;
process.stdout.write(
  `${JSON.stringify({
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    total: result.requests.total,
    perSecond: Array.from(perSecond, (n) => n ?? 0),
    ...(bodies === null ? {} : { bodiesSent: nextBody, bodiesRanOut: nextBody > bodies.length }),
  })}\n`,
);
