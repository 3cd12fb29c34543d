/**
 * Header edge cases sent byte for byte over raw HTTP: repeated credential headers, 8 KiB and
 * 64 KiB headers, latin1 and UTF-8 bytes, control characters, mixed-case names. Each is
 * answered (our JSON error, or node's own 400/431 for what is not HTTP), a refusal changes no
 * state, and the server stays up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDeviceKeys } from '@agentpack-identity/protocol';
import { DELEGABLE, b64, issueKey, must, signed } from './helpers/fuzz-calls.js';
import { changedParts, errorShapeProblem, snapshot } from './helpers/fuzz-contract.js';
import { sendRaw, type RawReply } from './helpers/raw-client.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { BRIDGE_KEY, BRIDGE_KEY_2, startTestService, type TestService } from './helpers/service.js';
import { mintTestToken } from './helpers/tokens.js';

describe('header edge cases over raw HTTP', () => {
  let svc: TestService;
  let keyA: string;
  let keyB: string;
  let delegation: string;
  let token: string;
  let enrolled: { key: string; seed: Uint8Array };
  let run: { id: string; seed: Uint8Array };

  beforeAll(async () => {
    svc = await startTestService();
    for (const id of ['hd-agent-a', 'hd-agent-b']) {
      must(
        await svc.post('/agents/create', { agent_id: id, display_name: id }, svc.bridge),
        201,
        'create',
      );
    }
    keyA = (await issueKey(svc, 'hd-agent-a'))[0];
    keyB = (await issueKey(svc, 'hd-agent-b'))[0];
    delegation = must(
      await svc.post(
        '/delegate',
        { to_agent: 'hd-agent-a', scope: DELEGABLE, ttl_seconds: 600 },
        svc.device(keyB),
      ),
      201,
      'delegate',
    ).delegation_id;
    token = mintTestToken({ sub: 'hd-agent-a', scope: DELEGABLE, nowMs: Date.now() });
    const keys = generateDeviceKeys();
    const code = must(
      await svc.post('/device/enrollments/create', { agent_id: 'hd-agent-a' }, svc.bridge),
      201,
      'enrollment',
    ).code;
    enrolled = {
      key: openEnrolledKey(
        must(
          await svc.post(
            '/device/enroll',
            {
              code,
              sealing_public_key: b64(keys.sealing.publicKey),
              signing_public_key: b64(keys.signing.publicKey),
            },
            {},
          ),
          201,
          'enroll',
        ),
        keys.sealing,
      ),
      seed: keys.signing.privateKey,
    };
    const runKeys = generateDeviceKeys().signing;
    run = {
      id: must(
        await svc.post(
          '/runs/spawn',
          {
            task: 'headers',
            scope: DELEGABLE,
            ttl_seconds: 600,
            public_key: b64(runKeys.publicKey),
          },
          svc.device(keyA),
        ),
        201,
        'spawn',
      ).run_id,
      seed: runKeys.privateKey,
    };
  });
  afterAll(async () => {
    await svc?.close();
  });

  const json: [string, string] = ['content-type', 'application/json'];

  /** Sends, checks the answer is ours (JSON error, right code) or node's own 4xx, state kept. */
  async function send(
    spec: {
      path: string;
      method?: string;
      headers: Array<[string, string | Buffer]>;
      body?: string;
    },
    expected: { status: number; code?: string } | 'node-4xx',
  ): Promise<RawReply> {
    const before = await snapshot(svc.store);
    const reply = await sendRaw(svc.url, { body: '{}', ...spec });
    const what = `${spec.method ?? 'POST'} ${spec.path} ${spec.headers.map(([n]) => n).join(',')}`;
    expect(reply.status, `${what}: ${reply.text}`).toBeLessThan(500);
    if (expected === 'node-4xx') {
      expect([400, 431], what).toContain(reply.status);
    } else {
      expect(reply.status, `${what}: ${reply.text}`).toBe(expected.status);
      if (expected.code !== undefined) {
        expect(errorShapeProblem(reply.status, reply.body), what).toBeNull();
        expect(reply.body.error.code, what).toBe(expected.code);
      }
    }
    if (reply.status >= 400) {
      expect(changedParts(before, await snapshot(svc.store)), what).toEqual([]);
    }
    await stillUp();
    return reply;
  }

  /** The server still answers, and a real credential still works. */
  async function stillUp(): Promise<void> {
    const health = await sendRaw(svc.url, { method: 'GET', path: '/healthz', headers: [] });
    expect(health.status).toBe(200);
    const res = await svc.post('/agents/get', {}, svc.device(keyA));
    expect(res.status).toBe(200);
  }

  it('refuses every repeated credential header with 400, same value or not, whatever the case', async () => {
    const put = (headers: Array<[string, string]>) => ({
      path: '/secrets/put',
      headers: [json, ...headers],
      body: JSON.stringify({ name: 'hd_secret', value: 'v' }),
    });
    const repeats: Array<Array<[string, string]>> = [
      [
        ['x-agentpack-device-key', keyA],
        ['x-agentpack-device-key', keyA],
      ],
      [
        ['x-agentpack-device-key', keyA],
        ['X-Agentpack-Device-Key', keyB],
      ],
      [
        ['authorization', `Bearer ${token}`],
        ['Authorization', `Bearer ${token}`],
      ],
      [
        ['authorization', `Bearer ${token}`],
        ['AUTHORIZATION', 'Basic Zm9vOmJhcg=='],
      ],
      [
        ['x-agentpack-device-key', keyA],
        ['x-agentpack-delegation', delegation],
        ['X-AGENTPACK-DELEGATION', delegation],
      ],
      [
        ['authorization', `Bearer ${token}`],
        ['x-agentpack-delegation', delegation],
        ['x-agentpack-delegation', 'dg_AAAAAAAAAAAAAAAAAAAAAA'],
      ],
    ];
    for (const headers of repeats) {
      await send(put(headers), { status: 400, code: 'invalid_argument' });
    }
    // The run header and the signature headers, signed correctly, then one of them repeated.
    const body = JSON.stringify({ name: 'hd_secret', value: 'v' });
    const unsigned = { method: 'POST', path: '/secrets/put', body: Buffer.from(body) };
    for (const [credential, seed] of [
      [['x-agentpack-run', run.id], run.seed],
      [['x-agentpack-device-key', enrolled.key], enrolled.seed],
    ] as Array<[[string, string], Uint8Array]>) {
      const sig = signed(seed, unsigned, Date.now());
      for (let i = -1; i < sig.length; i++) {
        const headers: Array<[string, string]> = [credential, ...sig];
        headers.push(i === -1 ? [credential[0].toUpperCase(), credential[1]] : sig[i]!);
        await send(put(headers), { status: 400, code: 'invalid_argument' });
      }
    }
    for (const second of [BRIDGE_KEY, BRIDGE_KEY_2, 'garbage']) {
      await send(
        {
          path: '/agents/create',
          headers: [json, ['x-agentpack-key', BRIDGE_KEY], ['X-AgentPack-Key', second]],
          body: JSON.stringify({ display_name: 'never', agent_id: 'hd-never' }),
        },
        { status: 400, code: 'invalid_argument' },
      );
    }
    expect(await svc.store.get('agents', 'hd-never')).toBeNull();
    expect(await svc.store.get('secrets', 'hd-agent-a:hd_secret')).toBeNull();
  });

  it('answers 8 KiB headers by the rules and 64 KiB ones with a 4xx, and stays up', async () => {
    const k8 = 'k'.repeat(8 * 1024);
    const body = JSON.stringify({ agent_id: 'hd-agent-a' });
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-key', k8]], body },
      {
        status: 401,
        code: 'unauthenticated',
      },
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-device-key', k8]] },
      {
        status: 401,
        code: 'unauthenticated',
      },
    );
    await send(
      { path: '/agents/get', headers: [json, ['authorization', `Bearer ${k8}`]] },
      {
        status: 401,
        code: 'unauthenticated',
      },
    );
    await send(
      {
        path: '/agents/get',
        headers: [json, ['x-agentpack-device-key', keyA], ['x-agentpack-delegation', k8]],
      },
      { status: 403, code: 'permission_denied' },
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-run', k8]] },
      { status: 401, code: 'unauthenticated' },
    );
    const sig = signed(
      enrolled.seed,
      { method: 'POST', path: '/agents/get', body: Buffer.from('{}') },
      Date.now(),
    );
    for (let i = 0; i < sig.length; i++) {
      const long = sig.map(([n, v], j): [string, string] => [n, j === i ? k8 : v]);
      await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-device-key', enrolled.key], ...long] },
        { status: 401, code: 'unauthenticated' },
      );
    }
    // A long header that is not a credential changes nothing.
    const ok = await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-device-key', keyA], ['x-pad', k8]] },
      { status: 200 },
    );
    expect(ok.body.agent_id).toBe('hd-agent-a');
    const k64 = 'k'.repeat(64 * 1024);
    for (const name of ['x-agentpack-key', 'x-agentpack-device-key', 'authorization', 'x-pad']) {
      const reply = await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-device-key', keyA], [name, k64]] },
        'node-4xx',
      );
      expect(reply.status).toBe(431);
    }
    // Many small headers adding up past the limit.
    const many = Array.from({ length: 3000 }, (_, i): [string, string] => [`x-h${i}`, 'v']);
    expect(
      (await send({ path: '/healthz', method: 'GET', headers: many }, 'node-4xx')).status,
    ).toBe(431);
  });

  it('refuses credentials with latin1, UTF-8 or control bytes, never with a 5xx', async () => {
    const latin1 = Buffer.from([0x61, 0xe9, 0xff]);
    const utf8 = Buffer.from('\u00e9\u{1F600}', 'utf8');
    for (const bytes of [latin1, utf8]) {
      const withKey = (prefix: string) => Buffer.concat([Buffer.from(prefix, 'latin1'), bytes]);
      await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-key', withKey(BRIDGE_KEY)]] },
        { status: 401, code: 'unauthenticated' },
      );
      await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-device-key', withKey(keyA)]] },
        { status: 401, code: 'unauthenticated' },
      );
      await send(
        { path: '/agents/get', headers: [json, ['authorization', withKey(`Bearer ${token}`)]] },
        { status: 401, code: 'unauthenticated' },
      );
      await send(
        {
          path: '/agents/get',
          headers: [json, ['x-agentpack-device-key', keyA], ['x-agentpack-delegation', bytes]],
        },
        { status: 403, code: 'permission_denied' },
      );
      await send(
        {
          path: '/agents/get',
          headers: [
            ['content-type', withKey('application/json; charset=')],
            ['x-agentpack-device-key', keyA],
          ],
        },
        { status: 415, code: 'unsupported_media_type' },
      );
      // Non-ASCII in a header that is not a credential is harmless.
      await send(
        {
          path: '/agents/get',
          headers: [json, ['x-agentpack-device-key', keyA], ['x-note', bytes]],
        },
        { status: 200 },
      );
    }
    // What is not HTTP is answered by node itself, and the server stays up.
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-key', Buffer.from([0x01, 0x41])]] },
      'node-4xx',
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpäck-key'.normalize('NFC'), BRIDGE_KEY]] },
      'node-4xx',
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-key', `${BRIDGE_KEY}\r\n continued`]] },
      'node-4xx',
    );
  });

  it('accepts credential and content-type header names in any case', async () => {
    const cases: Array<Array<[string, string]>> = [
      [['X-AgentPack-Device-Key', keyA]],
      [['X-AGENTPACK-DEVICE-KEY', keyA]],
      [['Authorization', `BEARER ${token}`]],
      [['authorization', `bearer ${token}`]],
      [
        ['x-AgentPack-device-KEY', keyA],
        ['X-Agentpack-Delegation', delegation],
      ],
    ];
    for (const headers of cases) {
      const reply = await send(
        { path: '/agents/get', headers: [['CONTENT-TYPE', 'Application/Json'], ...headers] },
        { status: 200 },
      );
      expect(reply.body.agent_id).toMatch(/^hd-agent-[ab]$/);
    }
    const bridge = await send(
      {
        path: '/agents/get',
        headers: [
          ['Content-Type', 'application/json'],
          ['X-AGENTPACK-KEY', BRIDGE_KEY],
        ],
        body: JSON.stringify({ agent_id: 'hd-agent-b' }),
      },
      { status: 200 },
    );
    expect(bridge.body.agent_id).toBe('hd-agent-b');
  });

  it('answers empty and whitespace credentials with 401, and a lone delegation with 401', async () => {
    for (const [name, value] of [
      ['x-agentpack-key', ''],
      ['x-agentpack-device-key', '   '],
      ['authorization', ''],
      ['authorization', 'Bearer'],
      ['authorization', 'Bearer  '],
      ['x-agentpack-delegation', delegation],
    ] as Array<[string, string]>) {
      await send(
        { path: '/agents/get', headers: [json, [name, value]] },
        { status: 401, code: 'unauthenticated' },
      );
    }
  });
});
