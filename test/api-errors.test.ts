/**
 * The HTTP contract's refusals over real HTTP: every one a JSON error with the right status and
 * code, never a 500, and nothing written.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { rawRequest } from './helpers/raw-http.js';

let svc: TestService;
let deviceKey: string;
beforeEach(async () => {
  svc = await startTestService();
  await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
  deviceKey = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body
    .device_key;
});
afterEach(async () => {
  await svc.close();
});

function expectError(res: { status: number; body: any }, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({
    error: expect.objectContaining({ code, message: expect.any(String) }),
  });
}

describe('routing', () => {
  it('answers 404 not_found for an unknown path, whatever the method', async () => {
    expectError(await svc.post('/agents/nope', {}, svc.bridge), 404, 'not_found');
    expectError(await svc.request('/', { method: 'GET' }), 404, 'not_found');
    expectError(
      await svc.post('/agents/create/', { display_name: 'x' }, svc.bridge),
      404,
      'not_found',
    );
  });

  it('answers 405 with Allow for a wrong method on a known path', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const res = await svc.request('/agents/create', { method });
      expectError(res, 405, 'method_not_allowed');
      expect(res.headers.get('allow')).toBe('POST');
    }
    const res = await svc.post('/healthz', {});
    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('GET');
  });

  it('serves /healthz without a credential', async () => {
    const res = await svc.request('/healthz', { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });
});

describe('body', () => {
  const create = (body: string | Buffer, contentType?: string) =>
    svc.request('/agents/create', {
      method: 'POST',
      headers: {
        ...svc.bridge,
        ...(contentType === undefined ? {} : { 'content-type': contentType }),
      },
      body,
    });

  it('refuses anything but JSON with 415', async () => {
    expectError(await create('{"display_name":"x"}'), 415, 'unsupported_media_type');
    expectError(
      await create('display_name=x', 'application/x-www-form-urlencoded'),
      415,
      'unsupported_media_type',
    );
    expectError(await create('{"display_name":"x"}', 'text/plain'), 415, 'unsupported_media_type');
    expectError(
      await create('{"display_name":"x"}', 'application/json; charset=latin1'),
      415,
      'unsupported_media_type',
    );
    expect((await create('{"display_name":"x"}', 'Application/JSON; charset=UTF-8')).status).toBe(
      201,
    );
  });

  it('refuses a body over 64 KiB with 413', async () => {
    const big = JSON.stringify({ display_name: 'x'.repeat(64 * 1024) });
    expectError(await create(big, 'application/json'), 413, 'payload_too_large');
    const exact = `{"display_name":"x","pad":"${' '.repeat(64 * 1024 - 30)}"}`;
    // Exactly at the limit is read (and then refused by the schema, not by size).
    expectError(
      await create(exact.slice(0, 64 * 1024 - 1) + '}', 'application/json'),
      400,
      'invalid_argument',
    );
  });

  it('refuses malformed JSON, non-objects and invalid UTF-8 with 400', async () => {
    for (const body of ['{', '', 'null', '[]', '"x"', '42', '{"display_name": "x",}']) {
      expectError(await create(body, 'application/json'), 400, 'invalid_argument');
    }
    const badUtf8 = Buffer.concat([
      Buffer.from('{"display_name":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    expectError(await create(badUtf8, 'application/json'), 400, 'invalid_argument');
    expect(await svc.store.auditEvents(10)).toHaveLength(2); // the create and issue of beforeEach
  });

  it('refuses a lone surrogate, which UTF-8 storage would silently change, and writes nothing', async () => {
    const res = await create(
      '{"display_name":"bad \\ud800 name","agent_id":"surrogate-agent"}',
      'application/json',
    );
    expectError(res, 400, 'invalid_argument');
    expect(await svc.store.get('agents', 'surrogate-agent')).toBeNull();
    const paired = await create(
      '{"display_name":"ok \\ud83d\\ude00","agent_id":"emoji-agent"}',
      'application/json',
    );
    expect(paired.status).toBe(201);
    expect(paired.body.display_name).toBe('ok 😀');
  });

  it('refuses __proto__ and other unknown keys', async () => {
    expectError(
      await create('{"display_name":"x","__proto__":{"admin":true}}', 'application/json'),
      400,
      'invalid_argument',
    );
  });
});

describe('credentials', () => {
  it('answers 401 with WWW-Authenticate when no credential is sent', async () => {
    const res = await svc.post('/agents/get', { agent_id: 'agent-a' });
    expectError(res, 401, 'unauthenticated');
    expect(res.headers.get('www-authenticate')).toContain('AgentpackKey');
  });

  it('answers 401 for a wrong bridge key or a garbage, unknown or truncated device key', async () => {
    expectError(
      await svc.post(
        '/agents/get',
        { agent_id: 'agent-a' },
        { 'x-agentpack-key': `${BRIDGE_KEY}x` },
      ),
      401,
      'unauthenticated',
    );
    for (const key of [
      'garbage',
      deviceKey.slice(0, -1),
      `${deviceKey.slice(0, -1)}${deviceKey.endsWith('A') ? 'B' : 'A'}`,
      `apdk_${'A'.repeat(49)}`,
      'x'.repeat(600),
    ]) {
      expectError(await svc.post('/agents/get', {}, svc.device(key)), 401, 'unauthenticated');
    }
    const reasons = svc.logs.filter((l) => l.includes('auth.failed'));
    expect(reasons.length).toBeGreaterThanOrEqual(6);
    for (const line of reasons) {
      expect(line).not.toContain(deviceKey.slice(5, 30));
      expect(line).not.toContain(BRIDGE_KEY);
    }
  });

  it('refuses two primary credentials with 400', async () => {
    const res = await svc.post('/agents/get', {}, { ...svc.bridge, ...svc.device(deviceKey) });
    expectError(res, 400, 'invalid_argument');
  });

  it('refuses a bearer token (not accepted by this version) with 401', async () => {
    expectError(
      await svc.post('/agents/get', {}, { authorization: 'Bearer abc.def.ghi' }),
      401,
      'unauthenticated',
    );
  });

  it('refuses a repeated credential header with 400, whatever its case', async () => {
    const res = await rawRequest(svc.url, {
      path: '/agents/get',
      headers: [
        ['content-type', 'application/json'],
        ['X-Agentpack-Device-Key', deviceKey],
        ['x-agentpack-device-key', deviceKey],
      ],
      body: '{}',
    });
    expectError(res, 400, 'invalid_argument');
  });

  it('accepts credential header names in any case', async () => {
    const res = await rawRequest(svc.url, {
      path: '/agents/get',
      headers: [
        ['Content-Type', 'application/json'],
        ['X-AGENTPACK-DEVICE-KEY', deviceKey],
      ],
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(res.body.agent_id).toBe('agent-a');
  });

  it('answers 401, not 500, for non-ASCII and very long credential values', async () => {
    const nonAscii = await rawRequest(svc.url, {
      path: '/agents/get',
      headers: [
        ['content-type', 'application/json'],
        ['x-agentpack-key', `${BRIDGE_KEY}\u00e9`],
      ],
      body: '{"agent_id":"agent-a"}',
    });
    expectError(nonAscii, 401, 'unauthenticated');
    const long = await svc.post('/agents/get', {}, svc.device('a'.repeat(8000)));
    expectError(long, 401, 'unauthenticated');
  });

  it('checks the body before the credential, so a bad body never costs a store read', async () => {
    const res = await svc.request('/agents/get', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...svc.device('garbage') },
      body: '{',
    });
    expectError(res, 400, 'invalid_argument');
  });
});
