/**
 * Brokered secrets over real HTTP: `/secrets/put {brokered: true}` marks a secret for good;
 * it is then read only sealed, by an enrolled device's own key (the host that runs the
 * credential broker). A run, a token, a delegated call, a plain device key or an unsealed read
 * gets 403 `brokered` from `/secrets/get` and `/secrets/resolve` alike, and nothing is audited.
 */
import { createRequire } from 'node:module';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateDeviceKeys } from '@agentpack-identity/protocol';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { runClient, type RunClient } from './helpers/runs.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { startTestService, type ApiResult, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

const require = createRequire(import.meta.url);
// libsodium-wrappers' ESM entry does not load on Node 20; its CommonJS entry does.
const sodium = require('libsodium-wrappers') as any;

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const REF = 'agentpack.secret://agent-a/openai_key';
const VALUE = 'sk-brokered-ünïcode-1';

let svc: TestService;
let clock: ManualClock;
let runs: RunClient;
let plainA: string; // a plain (unenrolled) device key of agent-a
let host: Enrolled; // agent-a's enrolled device: the broker's host

interface Enrolled {
  keys: ReturnType<typeof generateDeviceKeys>;
  device_key: string;
}

async function enroll(agentId: string): Promise<Enrolled> {
  const made = await svc.post('/device/enrollments/create', { agent_id: agentId }, svc.bridge);
  expect(made.status).toBe(201);
  const keys = generateDeviceKeys();
  const res = await svc.post('/device/enroll', {
    code: made.body.code,
    sealing_public_key: b64(keys.sealing.publicKey),
    signing_public_key: b64(keys.signing.publicKey),
  });
  expect(res.status).toBe(201);
  return { keys, device_key: openEnrolledKey(res.body, keys.sealing) };
}

function opened(res: ApiResult, sealed: string, device: Enrolled): string {
  expect(res.status, res.text).toBe(200);
  const box = Buffer.from(sealed, 'base64url');
  const { publicKey, privateKey } = device.keys.sealing;
  return Buffer.from(sodium.crypto_box_seal_open(box, publicKey, privateKey)).toString('utf8');
}

/** A 403 `brokered` that carries no value. */
function expectBrokered(res: ApiResult, extra: Record<string, unknown> = {}) {
  expect(res.status, res.text).toBe(403);
  expect(res.body.error.code).toBe('permission_denied');
  expect(res.body.error.details).toMatchObject({ reason: 'brokered', ...extra });
  expect(res.body.error.message).toMatch(/sealed.*enrolled device/);
  expect(res.text).not.toContain(VALUE);
  expect(res.text).not.toContain('"sealed"');
}

async function readEvents() {
  return (await svc.store.auditEvents(500)).filter(
    (e) => e.action === 'secret.get' || e.action === 'secret.resolve',
  );
}

const token = (scope = ['secrets/get', 'secrets/resolve']) =>
  bearer(mintTestToken({ sub: 'agent-a', scope, nowMs: clock.now() }));

beforeAll(async () => {
  await sodium.ready;
});
beforeEach(async () => {
  clock = manualClock(Date.now());
  svc = await startTestService({ clock });
  runs = runClient(svc, clock);
  for (const id of ['agent-a', 'agent-b']) {
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  }
  plainA = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  host = await enroll('agent-a');
  const put = await svc.post(
    '/secrets/put',
    { name: 'openai_key', value: VALUE, brokered: true },
    svc.device(host.device_key),
  );
  expect(put.status, put.text).toBe(200);
});
afterEach(async () => {
  await svc.close();
});

describe('marking', () => {
  it('put by the device key marks it; metadata and list show brokered true, others false', async () => {
    await svc.post('/secrets/put', { name: 'plain', value: 'p' }, svc.device(plainA));
    const meta = await svc.post('/secrets/metadata', { name: 'openai_key' }, svc.device(plainA));
    expect(meta.body).toMatchObject({ name: 'openai_key', current_version: 1, brokered: true });
    const other = await svc.post('/secrets/metadata', { name: 'plain' }, svc.device(plainA));
    expect(other.body.brokered).toBe(false);
    const list = await svc.post('/secrets/list', { agent_id: 'agent-a' }, svc.bridge);
    expect(list.body.secrets.map((s: any) => [s.name, s.brokered])).toEqual([
      ['openai_key', true],
      ['plain', false],
    ]);
  });

  it('put by the bridge key with agent_id marks it too', async () => {
    const put = await svc.post(
      '/secrets/put',
      { agent_id: 'agent-b', name: 'anthropic_key', value: 'sk-b', brokered: true },
      svc.bridge,
    );
    expect(put.status).toBe(200);
    const meta = await svc.post(
      '/secrets/metadata',
      { agent_id: 'agent-b', name: 'anthropic_key' },
      svc.bridge,
    );
    expect(meta.body.brokered).toBe(true);
  });

  it('is sticky: a put without brokered keeps it, brokered: false is 409 and writes nothing', async () => {
    const again = await svc.post(
      '/secrets/put',
      { name: 'openai_key', value: 'sk-rotated' },
      svc.device(plainA),
    );
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(2);
    const unmark = await svc.post(
      '/secrets/put',
      { agent_id: 'agent-a', name: 'openai_key', value: 'sk-open', brokered: false },
      svc.bridge,
    );
    expect(unmark.status).toBe(409);
    expect(unmark.body.error).toMatchObject({
      code: 'failed_precondition',
      details: { reason: 'brokered' },
    });
    const meta = await svc.post('/secrets/metadata', { name: 'openai_key' }, svc.device(plainA));
    expect(meta.body).toMatchObject({ current_version: 2, brokered: true });
    // The rotated value is brokered too: only the host reads it.
    expectBrokered(await svc.post('/secrets/get', { name: 'openai_key' }, svc.device(plainA)));
    const sealed = await svc.post(
      '/secrets/get',
      { name: 'openai_key', seal: true },
      svc.device(host.device_key),
    );
    expect(opened(sealed, sealed.body.sealed, host)).toBe('sk-rotated');
  });

  it('brokered: true on an existing secret marks it from then on; false on a plain one is fine', async () => {
    await svc.post('/secrets/put', { name: 'later', value: 'v1' }, svc.device(plainA));
    const stays = await svc.post(
      '/secrets/put',
      { name: 'plain', value: 'p', brokered: false },
      svc.device(plainA),
    );
    expect(stays.status).toBe(200);
    await svc.post(
      '/secrets/put',
      { name: 'later', value: 'v2', brokered: true },
      svc.device(plainA),
    );
    const old = await svc.post('/secrets/get', { name: 'later', version: 1 }, svc.device(plainA));
    expectBrokered(old);
  });
});

describe('writes', () => {
  it('a run or a token cannot overwrite (or mark) a brokered secret; the bridge and a device key can', async () => {
    const run = await runs.spawn(svc.device(plainA), {
      scope: ['secrets/put', 'secrets/get'],
    });
    const byRun = await runs.asRun(run, '/secrets/put', {
      name: 'openai_key',
      value: 'sk-attacker',
    });
    expect(byRun.status).toBe(403);
    expect(byRun.body.error.details).toMatchObject({ reason: 'brokered' });
    const byToken = await svc.post(
      '/secrets/put',
      { name: 'openai_key', value: 'sk-attacker' },
      bearer(mintTestToken({ sub: 'agent-a', scope: ['secrets/put'], nowMs: clock.now() })),
    );
    expect(byToken.status).toBe(403);
    const mark = await runs.asRun(run, '/secrets/put', {
      name: 'fresh',
      value: 'x',
      brokered: true,
    });
    expect(mark.status).toBe(403);
    const meta = await svc.post('/secrets/metadata', { name: 'openai_key' }, svc.device(plainA));
    expect(meta.body.current_version).toBe(1);
    const byBridge = await svc.post(
      '/secrets/put',
      { agent_id: 'agent-a', name: 'openai_key', value: 'sk-rotated' },
      svc.bridge,
    );
    expect(byBridge.status).toBe(200);
  });
});

describe('reads', () => {
  it('the enrolled device reads it sealed, by get and by resolve, and each read is audited', async () => {
    const got = await svc.post(
      '/secrets/get',
      { name: 'openai_key', seal: true },
      svc.device(host.device_key),
    );
    expect(got.body.value).toBeUndefined();
    expect(opened(got, got.body.sealed, host)).toBe(VALUE);
    const resolved = await svc.post(
      '/secrets/resolve',
      { refs: [REF], seal: true },
      svc.device(host.device_key),
    );
    expect(opened(resolved, resolved.body.values[0].sealed, host)).toBe(VALUE);
    expect((await readEvents()).map((e) => e.action)).toEqual(['secret.get', 'secret.resolve']);
  });

  it('refuses an unsealed read by the enrolled device', async () => {
    expectBrokered(
      await svc.post('/secrets/get', { name: 'openai_key' }, svc.device(host.device_key)),
      { name: 'openai_key' },
    );
    expectBrokered(
      await svc.post('/secrets/resolve', { refs: [REF] }, svc.device(host.device_key)),
      { index: 0 },
    );
    expect(await readEvents()).toEqual([]);
  });

  it('refuses a plain device key (sealed: no_sealing_key, before the secret is looked up)', async () => {
    expectBrokered(await svc.post('/secrets/get', { name: 'openai_key' }, svc.device(plainA)));
    const sealed = await svc.post(
      '/secrets/get',
      { name: 'openai_key', seal: true },
      svc.device(plainA),
    );
    expect(sealed.status).toBe(403);
    expect(sealed.body.error.details.reason).toBe('no_sealing_key');
    expect(await readEvents()).toEqual([]);
  });

  it('refuses a capability token', async () => {
    expectBrokered(await svc.post('/secrets/get', { name: 'openai_key' }, token()));
    expectBrokered(await svc.post('/secrets/resolve', { refs: [REF] }, token()), { index: 0 });
    expect(await readEvents()).toEqual([]);
  });

  it('refuses a run, by get and by resolve (the whole call, with the index); nothing is audited', async () => {
    await svc.post('/secrets/put', { name: 'db_url', value: 'pg://x' }, svc.device(plainA));
    const run = await runs.spawn(svc.device(host.device_key), {
      scope: ['secrets/get:openai_key', 'secrets/get:db_url'],
    });
    expectBrokered(await runs.asRun(run, '/secrets/get', { name: 'openai_key' }));
    const both = await runs.asRun(run, '/secrets/resolve', {
      refs: ['agentpack.secret://agent-a/db_url', REF],
    });
    expectBrokered(both, { index: 1 });
    expect(both.text).not.toContain('pg://x');
    // The unbrokered one alone is fine: the refusal was the brokered ref's.
    const alone = await runs.asRun(run, '/secrets/resolve', {
      refs: ['agentpack.secret://agent-a/db_url'],
    });
    expect(alone.body.values[0].value).toBe('pg://x');
    expect((await readEvents()).map((e) => e.target.secret)).toEqual(['db_url']);
  });

  it('refuses a delegated call, even sealed to an enrolled delegate', async () => {
    const bob = await enroll('agent-b');
    const d = await svc.post(
      '/delegate',
      { to_agent: 'agent-b', scope: ['secrets/get', 'secrets/resolve'], ttl_seconds: 600 },
      svc.device(plainA),
    );
    expect(d.status).toBe(201);
    const via = {
      'x-agentpack-device-key': bob.device_key,
      'x-agentpack-delegation': d.body.delegation_id,
    };
    expectBrokered(await svc.post('/secrets/get', { name: 'openai_key', seal: true }, via));
    expectBrokered(await svc.post('/secrets/resolve', { refs: [REF], seal: true }, via), {
      index: 0,
    });
    expect(await readEvents()).toEqual([]);
  });

  it('never falls back to a shared secret around a brokered one of the agent', async () => {
    await svc.post(
      '/secrets/put',
      { agent_id: '_shared', name: 'openai_key', value: 'sk-shared-plain' },
      svc.bridge,
    );
    await svc.post('/secrets/grant', { name: 'openai_key', agents: ['agent-a'] }, svc.bridge);
    const res = await svc.post('/secrets/resolve', { refs: [REF], fallback: 'shared' }, token());
    expectBrokered(res, { index: 0 });
    expect(res.text).not.toContain('sk-shared-plain');
  });
});

describe('shared', () => {
  beforeEach(async () => {
    const put = await svc.post(
      '/secrets/put',
      { agent_id: '_shared', name: 'gemini_key', value: 'sk-shared-b', brokered: true },
      svc.bridge,
    );
    expect(put.status).toBe(200);
    await svc.post('/secrets/grant', { name: 'gemini_key', agents: ['agent-a'] }, svc.bridge);
  });

  it('a brokered shared secret: metadata shows it; the granted enrolled device reads it sealed', async () => {
    const meta = await svc.post(
      '/secrets/metadata',
      { agent_id: '_shared', name: 'gemini_key' },
      svc.bridge,
    );
    expect(meta.body).toMatchObject({ brokered: true, readers: ['agent-a'] });
    const got = await svc.post(
      '/secrets/get',
      { name: 'gemini_key', owner: '_shared', seal: true },
      svc.device(host.device_key),
    );
    expect(opened(got, got.body.sealed, host)).toBe('sk-shared-b');
    const ref = 'agentpack.secret://_shared/gemini_key';
    const resolved = await svc.post(
      '/secrets/resolve',
      { refs: [ref], seal: true },
      svc.device(host.device_key),
    );
    expect(opened(resolved, resolved.body.values[0].sealed, host)).toBe('sk-shared-b');
  });

  it('refuses its other readers: unsealed, a token, a run, the fallback; nothing is audited', async () => {
    const body = { name: 'gemini_key', owner: '_shared' };
    expectBrokered(await svc.post('/secrets/get', body, svc.device(host.device_key)));
    expectBrokered(await svc.post('/secrets/get', body, token()));
    const run = await runs.spawn(svc.device(plainA), { scope: ['secrets/get:_shared/gemini_key'] });
    expectBrokered(await runs.asRun(run, '/secrets/get', body));
    const fallback = await svc.post(
      '/secrets/resolve',
      { refs: ['agentpack.secret://agent-a/gemini_key'], fallback: 'shared' },
      token(),
    );
    expectBrokered(fallback, { index: 0 });
    expect(await readEvents()).toEqual([]);
  });

  it('not granted: still 404, brokered or not (nothing learned about it)', async () => {
    const b = (await svc.post('/device/issue', { agent_id: 'agent-b' }, svc.bridge)).body
      .device_key;
    const res = await svc.post(
      '/secrets/get',
      { name: 'gemini_key', owner: '_shared' },
      svc.device(b),
    );
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('brokered');
  });
});
