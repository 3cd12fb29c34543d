/**
 * Hardening (0.2), finding 6: a signed request that carries `x-agentpack-delegation` signs the
 * delegation id too (`agentpack-request-v2`), so nobody on the path can add a delegation to a
 * correctly signed request and make it act for the delegator. Over real HTTP, with an enrolled
 * device of the delegate.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateDeviceKeys, openSealed, signRequest } from '@agentpack-identity/protocol';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { startTestService, type TestService } from './helpers/service.js';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

let svc: TestService;
let clock: ManualClock;
let alice: string; // a device key of agent-a, the delegator
let bob: { keys: ReturnType<typeof generateDeviceKeys>; device_key: string }; // agent-b's enrolled device
let delegationX: string;
let delegationY: string;

/** Enrolls a device for `agentId` and returns its keys and its device key (opened if sealed). */
async function enrollDevice(agentId: string) {
  const keys = generateDeviceKeys();
  const created = await svc.post('/device/enrollments/create', { agent_id: agentId }, svc.bridge);
  expect(created.status).toBe(201);
  const res = await svc.post('/device/enroll', {
    code: created.body.code,
    sealing_public_key: b64(keys.sealing.publicKey),
    signing_public_key: b64(keys.signing.publicKey),
  });
  expect(res.status).toBe(201);
  let deviceKey = res.body.device_key as string | undefined;
  if (deviceKey === undefined) {
    const opened = openSealed(
      Buffer.from(res.body.sealed_device_key as string, 'base64url'),
      keys.sealing.publicKey,
      keys.sealing.privateKey,
    );
    expect(opened).not.toBeNull();
    deviceKey = Buffer.from(opened!).toString('utf8');
  }
  return { keys, device_key: deviceKey };
}

async function delegateToBob(scope: string[]): Promise<string> {
  const res = await svc.post(
    '/delegate',
    { to_agent: 'agent-b', scope, ttl_seconds: 600 },
    svc.device(alice),
  );
  expect(res.status).toBe(201);
  return res.body.delegation_id as string;
}

beforeEach(async () => {
  clock = manualClock();
  svc = await startTestService({ clock });
  for (const id of ['agent-a', 'agent-b']) {
    expect(
      (await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge)).status,
    ).toBe(201);
  }
  alice = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body.device_key;
  expect(
    (await svc.post('/secrets/put', { name: 'openai_key', value: 'sk-alice' }, svc.device(alice)))
      .status,
  ).toBe(200);
  bob = await enrollDevice('agent-b');
  delegationX = await delegateToBob(['secrets/put', 'secrets/get']);
  delegationY = await delegateToBob(['secrets/put', 'secrets/get']);
});
afterEach(async () => {
  await svc.close();
});

/** Bob's signature headers for `path` and `body`, signed v1 or, with `delegation`, v2. */
function bobSigns(path: string, body: Buffer, delegation?: string): Record<string, string> {
  return {
    'x-agentpack-device-key': bob.device_key,
    ...signRequest({
      method: 'POST',
      path,
      body,
      signingSeed: bob.keys.signing.privateKey,
      nowMs: clock.now(),
      ...(delegation === undefined ? {} : { delegation }),
    }),
  };
}

function send(path: string, body: Buffer, headers: Record<string, string>) {
  return svc.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

/** The names of agent-a's secrets, as agent-a sees them. */
async function aliceSecrets(): Promise<string[]> {
  const res = await svc.post('/secrets/list', {}, svc.device(alice));
  expect(res.status).toBe(200);
  return (res.body.secrets as Array<{ name: string }>).map((s) => s.name).sort();
}

const putBody = (name: string, value: string) => Buffer.from(JSON.stringify({ name, value }));

describe('signed delegated requests sign the delegation (finding 6)', () => {
  it('refuses a v1-signed request with a delegation added on the path (401), and the delegator namespace is unchanged', async () => {
    const body = putBody('planted', 'attacker-value');
    const signedV1 = bobSigns('/secrets/put', body);
    const res = await send('/secrets/put', body, {
      ...signedV1,
      'x-agentpack-delegation': delegationX,
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
    expect(svc.logs.some((l) => l.includes('"reason":"bad_signature"'))).toBe(true);
    expect(await aliceSecrets()).toEqual(['openai_key']);
    expect(await svc.store.get('secrets', 'agent-a:planted')).toBeNull();
    const audited = (await svc.store.auditEvents(200)).filter(
      (e) =>
        e.action === 'secret.put' && (e.target as { agent_id?: string }).agent_id === 'agent-a',
    );
    expect(audited).toHaveLength(1); // the setup's own put only
    // The refused attempt spent nothing: the very same signed request, as sent by the device
    // (without the added header), still works — for the device's own agent.
    const original = await send('/secrets/put', body, signedV1);
    expect(original.status).toBe(200);
    expect(await svc.store.get('secrets', 'agent-b:planted')).not.toBeNull();
    expect(await aliceSecrets()).toEqual(['openai_key']);
  });

  it('also refuses a v1 signature on a delegated read', async () => {
    const body = Buffer.from(JSON.stringify({ name: 'openai_key' }));
    const res = await send('/secrets/get', body, {
      ...bobSigns('/secrets/get', body),
      'x-agentpack-delegation': delegationX,
    });
    expect(res.status).toBe(401);
    expect(res.text).not.toContain('sk-alice');
  });

  it('accepts a correctly v2-signed delegated request: it acts for the delegator', async () => {
    const body = putBody('from_bob', 'bob-wrote-this');
    const headers = bobSigns('/secrets/put', body, delegationX);
    expect(headers['x-agentpack-delegation']).toBe(delegationX); // signRequest sends what it signed
    const res = await send('/secrets/put', body, headers);
    expect(res.status).toBe(200);
    expect(await aliceSecrets()).toEqual(['from_bob', 'openai_key']);
    expect(await svc.store.get('secrets', 'agent-b:from_bob')).toBeNull();
    const read = Buffer.from(JSON.stringify({ name: 'openai_key' }));
    const got = await send('/secrets/get', read, bobSigns('/secrets/get', read, delegationX));
    expect(got.status).toBe(200);
    expect(got.body.value).toBe('sk-alice');
  });

  it('refuses a v2 signature on a request without a delegation header (401)', async () => {
    const body = putBody('stripped', 'v');
    const { 'x-agentpack-delegation': removed, ...stripped } = bobSigns(
      '/secrets/put',
      body,
      delegationX,
    );
    expect(removed).toBe(delegationX);
    const res = await send('/secrets/put', body, stripped);
    expect(res.status).toBe(401);
    expect(await svc.store.get('secrets', 'agent-b:stripped')).toBeNull();
    expect(await svc.store.get('secrets', 'agent-a:stripped')).toBeNull();
  });

  it('refuses a v2 signature for delegation X sent with delegation Y (401), though Y is valid', async () => {
    const body = putBody('swapped', 'v');
    const res = await send('/secrets/put', body, {
      ...bobSigns('/secrets/put', body, delegationX),
      'x-agentpack-delegation': delegationY,
    });
    expect(res.status).toBe(401);
    expect(await aliceSecrets()).toEqual(['openai_key']);
    // Y itself works when it is the one signed.
    const ok = await send('/secrets/put', body, bobSigns('/secrets/put', body, delegationY));
    expect(ok.status).toBe(200);
    expect(await aliceSecrets()).toEqual(['openai_key', 'swapped']);
  });
});
