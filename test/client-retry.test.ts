/**
 * The client's retries, timeouts, errors and cache against a scripted local node:http server:
 * every answer is chosen by the test, every request is recorded, and the waits go through an
 * injected sleep that records them and returns at once — so counts and delays are exact and
 * nothing really waits (the only real timer is the attempt deadline of the timeout cases).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeRawKey,
  ed25519PublicKeyObject,
  generateDeviceKeys,
  sealTo,
  verifyRequestSignature,
} from '@agentpack-identity/protocol';
import {
  AgentpackError,
  createClient,
  type ClientOptions,
  type Credential,
} from '../packages/client/src/index.js';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** What the script answers: a status, headers and a JSON body; or `hang` / `drop` the request. */
type Scripted =
  | { status: number; body?: unknown; text?: string; headers?: Record<string, string> }
  | 'hang'
  | 'drop';

interface ScriptedServer {
  url: string;
  seen: Seen[];
  /** Answers, in order, for a path; the last one repeats. */
  script(path: string, ...answers: Scripted[]): void;
  close(): Promise<void>;
}

async function scriptedServer(): Promise<ScriptedServer> {
  const scripts = new Map<string, Scripted[]>();
  const seen: Seen[] = [];
  const hung: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      seen.push({
        method: req.method ?? '',
        path,
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      const queue = scripts.get(path) ?? [
        { status: 404, body: { error: { code: 'not_found', message: 'no script' } } },
      ];
      const answer = queue.length > 1 ? queue.shift()! : queue[0]!;
      if (answer === 'hang') {
        hung.push(res);
        return;
      }
      if (answer === 'drop') {
        req.socket.destroy();
        return;
      }
      const text = answer.text ?? JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    script: (path, ...answers) => scripts.set(path, answers),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hung) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const SECRET = (value: string, version = 1) => ({
  status: 200,
  body: { name: 'openai_key', version, value, created_at: '2026-01-01T00:00:00.000Z' },
});
const UNAVAILABLE = {
  status: 503,
  body: { error: { code: 'unavailable', message: 'store down' } },
};
const PUT_OK = {
  status: 200,
  body: { name: 'openai_key', version: 2, created_at: '2026-01-01T00:00:00.000Z' },
};
const DEVICE_KEY = 'apdk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

let srv: ScriptedServer;
let sleeps: number[];
let clock: number;

beforeEach(async () => {
  srv = await scriptedServer();
  sleeps = [];
  clock = Date.parse('2026-01-01T00:00:00.000Z');
});
afterEach(async () => {
  await srv.close();
});

function client(extra: Partial<ClientOptions> = {}) {
  return createClient({
    url: srv.url,
    credential: { kind: 'device', deviceKey: DEVICE_KEY },
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    now: () => clock,
    ...extra,
  });
}

async function failure(promise: Promise<unknown>): Promise<AgentpackError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AgentpackError);
  return error as AgentpackError;
}

describe('retries', () => {
  it('a read answered 503 then 200 is retried once, after a full-jitter backoff', async () => {
    srv.script('/secrets/get', UNAVAILABLE, SECRET('sk-1'));
    const got = await client().secrets.get('openai_key');
    expect(got.value).toBe('sk-1');
    expect(srv.seen).toHaveLength(2);
    // random() = 0.5 of the first ceiling, 200 ms.
    expect(sleeps).toEqual([100]);
  });

  it('the backoff ceiling doubles per retry up to maxDelayMs, and the attempts are bounded', async () => {
    srv.script('/secrets/list', UNAVAILABLE);
    const error = await failure(
      client({
        retries: { retries: 4, baseDelayMs: 100, maxDelayMs: 500 },
        random: () => 0.999,
      }).secrets.list(),
    );
    expect(error).toMatchObject({
      code: 'unavailable',
      status: 503,
      attempts: 5,
      rpc: 'secrets/list',
    });
    expect(srv.seen).toHaveLength(5);
    expect(sleeps).toEqual([99, 199, 399, 499]);
  });

  it('429 with Retry-After in seconds waits exactly that long', async () => {
    srv.script(
      '/agents/get',
      {
        status: 429,
        headers: { 'retry-after': '3' },
        body: { error: { code: 'resource_exhausted', message: 'slow down' } },
      },
      {
        status: 200,
        body: {
          agent_id: 'agent-a',
          display_name: 'a',
          disabled: false,
          created_at: '2026-01-01T00:00:00.000Z',
        },
      },
    );
    const agent = await client().agents.get();
    expect(agent.agent_id).toBe('agent-a');
    expect(sleeps).toEqual([3000]);
    expect(srv.seen).toHaveLength(2);
  });

  it('Retry-After as an HTTP date is counted from the injected clock', async () => {
    const at = new Date(clock + 7000).toUTCString();
    srv.script('/secrets/get', { ...UNAVAILABLE, headers: { 'retry-after': at } }, SECRET('sk-1'));
    await client().secrets.get('openai_key');
    expect(sleeps).toEqual([7000]);
  });

  it('a Retry-After longer than maxRetryAfterMs is not waited out: the error says how long', async () => {
    srv.script(
      '/secrets/get',
      { ...UNAVAILABLE, headers: { 'retry-after': '120' } },
      SECRET('sk-1'),
    );
    const error = await failure(client().secrets.get('openai_key'));
    expect(error).toMatchObject({ code: 'unavailable', status: 503, attempts: 1 });
    expect(error.details).toMatchObject({ retry_after_ms: 120_000 });
    expect(sleeps).toEqual([]);
    expect(srv.seen).toHaveLength(1);
  });

  it('a secrets.put is never retried, with or without cas: 503 and a dropped connection alike', async () => {
    srv.script('/secrets/put', UNAVAILABLE, PUT_OK);
    const c = client();
    const error = await failure(c.secrets.put('openai_key', 'sk-2'));
    expect(error).toMatchObject({ code: 'unavailable', status: 503, attempts: 1 });
    srv.script('/secrets/put', 'drop', PUT_OK);
    const dropped = await failure(c.secrets.put('openai_key', 'sk-2', { cas: 1 }));
    expect(dropped).toMatchObject({ code: 'unavailable', status: 0, attempts: 1 });
    expect(srv.seen).toHaveLength(2);
    expect(sleeps).toEqual([]);
  });

  it('other non-idempotent calls are sent once too (runs.spawn, device.issue)', async () => {
    srv.script('/runs/spawn', UNAVAILABLE);
    srv.script('/device/issue', 'drop');
    const c = client();
    await failure(
      c.runs.spawn({
        task: 't',
        scope: ['secrets/get'],
        ttl_seconds: 60,
        public_key: 'x'.repeat(43),
      }),
    );
    await failure(c.device.issue({}));
    expect(srv.seen.map((s) => s.path)).toEqual(['/runs/spawn', '/device/issue']);
  });

  it('an idempotent write (agents.disable) is retried', async () => {
    srv.script('/agents/disable', UNAVAILABLE, {
      status: 200,
      body: {
        agent_id: 'agent-a',
        display_name: 'a',
        disabled: true,
        created_at: '2026-01-01T00:00:00.000Z',
      },
    });
    const agent = await client({
      credential: { kind: 'bridge', key: 'bridge-key-0123456789' },
    }).agents.disable({
      agent_id: 'agent-a',
    });
    expect(agent.disabled).toBe(true);
    expect(srv.seen).toHaveLength(2);
  });

  it('a dropped connection (network error) on a read is retried; unreachable ends as unavailable, status 0', async () => {
    srv.script('/secrets/get', 'drop', SECRET('sk-1'));
    expect((await client().secrets.get('openai_key')).value).toBe('sk-1');
    expect(srv.seen).toHaveLength(2);
    const url = srv.url;
    await srv.close();
    sleeps = [];
    const error = await failure(client({ url }).secrets.get('openai_key'));
    expect(error).toMatchObject({ code: 'unavailable', status: 0, attempts: 3 });
    expect(error.details).toMatchObject({ reason: 'network' });
    expect(sleeps).toHaveLength(2);
    srv = await scriptedServer(); // for afterEach
  });

  it('an attempt that gets no answer within timeoutMs is a timeout, retried for a read', async () => {
    srv.script('/secrets/get', 'hang', SECRET('sk-1'));
    expect((await client({ timeoutMs: 100 }).secrets.get('openai_key')).value).toBe('sk-1');
    expect(srv.seen).toHaveLength(2);
    srv.script('/secrets/get', 'hang');
    const error = await failure(client({ timeoutMs: 100, retries: 1 }).secrets.get('openai_key'));
    expect(error).toMatchObject({ code: 'timeout', status: 0, attempts: 2 });
  });

  it('a timed-out put is not retried', async () => {
    srv.script('/secrets/put', 'hang', PUT_OK);
    const error = await failure(client({ timeoutMs: 100 }).secrets.put('openai_key', 'v'));
    expect(error).toMatchObject({ code: 'timeout', attempts: 1 });
    expect(srv.seen).toHaveLength(1);
  });

  it('4xx and 500 are never retried; errors carry code, status, details and message', async () => {
    srv.script('/secrets/get', {
      status: 404,
      body: { error: { code: 'not_found', message: 'no such secret', details: { name: 'x' } } },
    });
    srv.script('/secrets/list', {
      status: 500,
      body: { error: { code: 'internal', message: 'oops' } },
    });
    const c = client();
    const notFound = await failure(c.secrets.get('x'));
    expect(notFound).toMatchObject({
      code: 'not_found',
      status: 404,
      details: { name: 'x' },
      message: 'no such secret',
      rpc: 'secrets/get',
    });
    expect(await failure(c.secrets.list())).toMatchObject({
      code: 'internal',
      status: 500,
      attempts: 1,
    });
    expect(srv.seen).toHaveLength(2);
  });

  it('an answer without the API error object gets the code of its status; a 2xx that is not JSON is bad_response', async () => {
    srv.script('/secrets/list', { status: 502, text: '<html>bad gateway</html>' });
    srv.script('/secrets/metadata', { status: 200, text: 'not json' });
    const c = client();
    expect(await failure(c.secrets.list())).toMatchObject({ code: 'unavailable', status: 502 });
    expect(await failure(c.secrets.metadata({ name: 'x' }))).toMatchObject({
      code: 'bad_response',
      status: 200,
    });
  });

  it('a redirect is never followed (the credential stays here)', async () => {
    srv.script('/secrets/get', { status: 307, headers: { location: 'http://127.0.0.2:1/steal' } });
    expect(await failure(client().secrets.get('x'))).toMatchObject({
      code: 'bad_response',
      status: 307,
    });
    expect(srv.seen).toHaveLength(1);
  });

  it('retries: 0 (client or call) turns retries off', async () => {
    srv.script('/secrets/get', UNAVAILABLE, SECRET('v'));
    await failure(client({ retries: 0 }).secrets.get('openai_key'));
    srv.script('/secrets/get', UNAVAILABLE, SECRET('v'));
    await failure(client().secrets.get('openai_key', { retries: 0 }));
    expect(srv.seen).toHaveLength(2);
  });

  it('the caller aborting during the backoff ends the call as aborted', async () => {
    srv.script('/secrets/get', UNAVAILABLE, SECRET('v'));
    const controller = new AbortController();
    const c = client({
      sleep: async () => {
        controller.abort();
        throw new Error('aborted');
      },
    });
    const error = await failure(c.secrets.get('openai_key', { signal: controller.signal }));
    expect(error.code).toBe('aborted');
    expect(srv.seen).toHaveLength(1);
  });

  it("a bad request is refused before anything is sent, by the route's own schema", async () => {
    const c = client();
    const error = await failure(c.secrets.get('not a name!'));
    expect(error).toMatchObject({ code: 'invalid_argument', status: 0, attempts: 0 });
    expect(error.details).toMatchObject({ field: 'name' });
    // An unknown field, as the strict schema refuses it.
    await failure(c.call('secrets/list', { nope: 1 } as never));
    expect(srv.seen).toHaveLength(0);
  });
});

describe('signed requests across retries', () => {
  it('each attempt of a run is signed afresh: a new nonce, and both signatures verify', async () => {
    const keys = generateDeviceKeys().signing;
    const credential: Credential = {
      kind: 'run',
      runId: 'run_AAAAAAAAAAAAAAAAAAAAAA',
      key: keys.privateKey,
    };
    srv.script('/secrets/get', UNAVAILABLE, SECRET('v'));
    for (const crypto of ['node', 'portable'] as const) {
      srv.seen.length = 0;
      srv.script('/secrets/get', UNAVAILABLE, SECRET('v'));
      await client({ credential, crypto }).secrets.get('openai_key');
      expect(srv.seen).toHaveLength(2);
      const [first, second] = srv.seen as [Seen, Seen];
      expect(first.headers['x-agentpack-nonce']).not.toBe(second.headers['x-agentpack-nonce']);
      for (const req of srv.seen) {
        expect(req.headers['x-agentpack-run']).toBe('run_AAAAAAAAAAAAAAAAAAAAAA');
        expect(req.headers['x-agentpack-device-key']).toBeUndefined();
        const ok = verifyRequestSignature(
          ed25519PublicKeyObject(decodeRawKey(Buffer.from(keys.publicKey).toString('base64url'))!),
          {
            method: 'POST',
            path: '/secrets/get',
            timestamp: String(req.headers['x-agentpack-timestamp']),
            nonce: String(req.headers['x-agentpack-nonce']),
            body: req.body,
          },
          String(req.headers['x-agentpack-signature']),
        );
        expect(ok).toBe(true);
        expect(req.headers['x-agentpack-timestamp']).toBe(String(Math.floor(clock / 1000)));
      }
    }
  });
});

describe('the secret cache', () => {
  it('serves a fresh value without asking, asks again once it is maxAgeMs old', async () => {
    srv.script('/secrets/get', SECRET('sk-1'), SECRET('sk-2', 2), SECRET('sk-3', 3));
    const c = client({ cache: { maxAgeMs: 1000 } });
    expect((await c.secrets.get('openai_key')).value).toBe('sk-1');
    clock += 999;
    expect((await c.secrets.get('openai_key')).value).toBe('sk-1');
    expect(srv.seen).toHaveLength(1);
    clock += 1;
    expect((await c.secrets.get('openai_key')).value).toBe('sk-2');
    expect(srv.seen).toHaveLength(2);
    expect(c.cache.size).toBe(1);
  });

  it('a put, delete or destroy through the client drops that name; other names stay', async () => {
    srv.script(
      '/secrets/get',
      SECRET('sk-1'),
      SECRET('sk-2', 2),
      SECRET('sk-3', 3),
      SECRET('sk-4', 4),
    );
    srv.script('/secrets/put', PUT_OK);
    srv.script('/secrets/delete', { status: 200, body: { name: 'openai_key', versions: [2] } });
    const c = client({ cache: { maxAgeMs: 60_000 } });
    await c.secrets.get('openai_key');
    await c.secrets.put('openai_key', 'sk-2');
    expect((await c.secrets.get('openai_key')).value).toBe('sk-2');
    await c.secrets.delete({ name: 'openai_key' });
    expect((await c.secrets.get('openai_key')).value).toBe('sk-3');
    // A failed put drops it too: the write may have landed.
    srv.script('/secrets/put', UNAVAILABLE);
    await failure(c.secrets.put('openai_key', 'sk-4'));
    expect((await c.secrets.get('openai_key')).value).toBe('sk-4');
    expect(srv.seen.filter((s) => s.path === '/secrets/get')).toHaveLength(4);
  });

  it('invalidate(name) drops one name, invalidate() everything; cache: false asks anyway', async () => {
    srv.script('/secrets/get', SECRET('v1'), SECRET('v2', 2), SECRET('v3', 3), SECRET('v4', 4));
    const c = client({ cache: { maxAgeMs: 60_000 } });
    await c.secrets.get('openai_key');
    await c.secrets.get('openai_key', { version: 1 });
    expect(srv.seen).toHaveLength(2); // another version is another entry
    c.cache.invalidate('other');
    await c.secrets.get('openai_key');
    expect(srv.seen).toHaveLength(2);
    c.cache.invalidate('openai_key');
    expect(c.cache.size).toBe(0);
    await c.secrets.get('openai_key');
    expect(srv.seen).toHaveLength(3);
    c.cache.invalidate();
    expect(c.cache.size).toBe(0);
    expect((await c.secrets.get('openai_key', { cache: false })).value).toBe('v4');
    expect(srv.seen).toHaveLength(4);
  });

  it('errors are not cached, and no client shares its cache with another credential', async () => {
    srv.script(
      '/secrets/get',
      { status: 404, body: { error: { code: 'not_found', message: 'no' } } },
      SECRET('v1'),
    );
    const c = client({ cache: { maxAgeMs: 60_000 } });
    await failure(c.secrets.get('openai_key'));
    await c.secrets.get('openai_key');
    expect(srv.seen).toHaveLength(2);
    await c.withCredential({ kind: 'device', deviceKey: DEVICE_KEY }).secrets.get('openai_key');
    await c.withDelegation('dg_AAAAAAAAAAAAAAAAAAAAAA').secrets.get('openai_key');
    expect(srv.seen).toHaveLength(4);
    expect(srv.seen[3]!.headers['x-agentpack-delegation']).toBe('dg_AAAAAAAAAAAAAAAAAAAAAA');
    // The original's entry is still served.
    await c.secrets.get('openai_key');
    expect(srv.seen).toHaveLength(4);
  });

  it('no cache unless asked for', async () => {
    srv.script('/secrets/get', SECRET('v1'));
    const c = client();
    await c.secrets.get('openai_key');
    await c.secrets.get('openai_key');
    expect(srv.seen).toHaveLength(2);
    expect(c.cache.size).toBe(0);
  });
});

describe('what is sent', () => {
  it('each credential kind sends its own header, and public routes send none', async () => {
    srv.script('/agents/get', {
      status: 200,
      body: {
        agent_id: 'agent-a',
        display_name: 'a',
        disabled: false,
        created_at: '2026-01-01T00:00:00.000Z',
      },
    });
    srv.script('/healthz', { status: 200, body: { ok: true } });
    const cases: [Credential, string, string][] = [
      [
        { kind: 'bridge', key: 'bridge-key-0123456789' },
        'x-agentpack-key',
        'bridge-key-0123456789',
      ],
      [{ kind: 'device', deviceKey: DEVICE_KEY }, 'x-agentpack-device-key', DEVICE_KEY],
      [{ kind: 'token', token: 'a.b.c' }, 'authorization', 'Bearer a.b.c'],
    ];
    for (const [credential, header, value] of cases) {
      const c = client({ credential });
      await c.agents.get();
      expect(srv.seen.at(-1)!.headers[header]).toBe(value);
      expect(srv.seen.at(-1)!.headers['content-type']).toBe('application/json');
      await c.health();
      expect(srv.seen.at(-1)!.method).toBe('GET');
      expect(srv.seen.at(-1)!.headers[header]).toBeUndefined();
    }
  });

  it('an enrolled device signs, asks sealed by default, opens the box, and refuses a clear answer to a sealed read', async () => {
    const keys = generateDeviceKeys();
    const credential: Credential = {
      kind: 'enrolled',
      deviceKey: DEVICE_KEY,
      signingSeed: keys.signing.privateKey,
      sealingKey: keys.sealing.privateKey,
    };
    const sealed = Buffer.from(sealTo(keys.sealing.publicKey, Buffer.from('sk-sealed'))).toString(
      'base64url',
    );
    srv.script(
      '/secrets/get',
      {
        status: 200,
        body: { name: 'openai_key', version: 1, sealed, created_at: '2026-01-01T00:00:00.000Z' },
      },
      SECRET('in clear'),
    );
    const c = client({ credential });
    expect(await c.secrets.get('openai_key')).toEqual({
      name: 'openai_key',
      version: 1,
      value: 'sk-sealed',
      created_at: '2026-01-01T00:00:00.000Z',
    });
    const req = srv.seen[0]!;
    expect(JSON.parse(req.body.toString())).toEqual({ name: 'openai_key', seal: true });
    expect(req.headers['x-agentpack-device-key']).toBe(DEVICE_KEY);
    expect(req.headers['x-agentpack-signature']).toBeDefined();
    expect(await failure(c.secrets.get('openai_key'))).toMatchObject({ code: 'bad_response' });
    // seal: false is a clear read, by choice.
    expect((await c.secrets.get('openai_key', { seal: false })).value).toBe('in clear');
  });

  it('plain http to a non-loopback host is refused when a credential would travel in clear', () => {
    expect(() =>
      createClient({
        url: 'http://example.com',
        credential: { kind: 'device', deviceKey: DEVICE_KEY },
      }),
    ).toThrow(/plain http/);
    expect(() => createClient({ url: 'http://example.com' })).not.toThrow();
    expect(() => createClient({ url: 'https://example.com/base/' })).not.toThrow();
  });

  it('a base URL with a path prefix: the prefix is in the URL, the route path is what is signed', async () => {
    srv.script('/base/secrets/get', SECRET('v'));
    const keys = generateDeviceKeys().signing;
    await client({
      url: `${srv.url}/base/`,
      credential: { kind: 'run', runId: 'run_AAAAAAAAAAAAAAAAAAAAAA', key: keys.privateKey },
    }).secrets.get('openai_key');
    const req = srv.seen[0]!;
    expect(req.path).toBe('/base/secrets/get');
    const ok = verifyRequestSignature(
      ed25519PublicKeyObject(keys.publicKey),
      {
        method: 'POST',
        path: '/secrets/get',
        timestamp: String(req.headers['x-agentpack-timestamp']),
        nonce: String(req.headers['x-agentpack-nonce']),
        body: req.body,
      },
      String(req.headers['x-agentpack-signature']),
    );
    expect(ok).toBe(true);
  });
});
