/**
 * Enrolled devices over real HTTP: enrollment codes, pinned keys and fingerprints, eviction,
 * sealed reads opened with libsodium, require_sealed, signed requests, attestations.
 */
import { createRequire } from 'node:module';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  deviceFingerprint,
  generateDeviceKeys,
  signAttestation,
  signRequest,
} from '@agentpack-identity/protocol';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

const require = createRequire(import.meta.url);
// libsodium-wrappers' ESM entry does not load on Node 20; its CommonJS entry does.
const sodium = require('libsodium-wrappers') as any;

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

let svc: TestService;
let clock: ManualClock;
beforeAll(async () => {
  await sodium.ready;
});
beforeEach(async () => {
  clock = manualClock(Date.now());
  svc = await startTestService({ clock });
  for (const id of ['agent-a', 'agent-b']) {
    await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge);
  }
});
afterEach(async () => {
  await svc.close();
});

type DeviceKeys = ReturnType<typeof generateDeviceKeys>;

async function newEnrollment(body: Record<string, unknown> = {}) {
  const res = await svc.post(
    '/device/enrollments/create',
    { agent_id: 'agent-a', ...body },
    svc.bridge,
  );
  expect(res.status).toBe(201);
  return res.body as { enrollment_id: string; code: string; agent_id: string; expires_at: string };
}

function enrollBody(code: string, keys: DeviceKeys) {
  return {
    code,
    sealing_public_key: b64(keys.sealing.publicKey),
    signing_public_key: b64(keys.signing.publicKey),
  };
}

async function enroll(keys = generateDeviceKeys(), extra: Record<string, unknown> = {}) {
  const { code } = await newEnrollment(extra);
  const res = await svc.post('/device/enroll', enrollBody(code, keys));
  expect(res.status).toBe(201);
  return {
    keys,
    ...(res.body as { key_id: string; fingerprint: string; agent_id: string }),
    device_key: openEnrolledKey(res.body, keys.sealing),
  };
}

/** POSTs a request signed by the device's signing key, the way the CLI does. */
function signedPost(
  path: string,
  body: object,
  device: { keys: DeviceKeys; device_key: string },
  extraHeaders: Record<string, string> = {},
  at = clock.now(),
) {
  const raw = Buffer.from(JSON.stringify(body));
  const headers = signRequest({
    method: 'POST',
    path,
    body: raw,
    signingSeed: device.keys.signing.privateKey,
    nowMs: at,
  });
  return svc.request(path, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-agentpack-device-key': device.device_key,
      ...headers,
      ...extraHeaders,
    },
    body: raw,
  });
}

describe('enrollment', () => {
  it('mints a one-time code and pins both keys; the fingerprint is SHA256 of the two keys', async () => {
    const keys = generateDeviceKeys();
    const fingerprint = deviceFingerprint(keys.sealing.publicKey, keys.signing.publicKey);
    const enrollment = await newEnrollment({
      expected_fingerprint: fingerprint,
      label: 'build box',
    });
    expect(enrollment.code).toMatch(/^apen_/);
    expect(JSON.stringify(await svc.store.auditEvents(100))).not.toContain(enrollment.code);
    const res = await svc.post('/device/enroll', enrollBody(enrollment.code, keys));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      agent_id: 'agent-a',
      fingerprint,
      sealed_device_key: expect.stringMatching(/^[A-Za-z0-9_-]+$/),
    });
    // The device key is answered only sealed to the device (libsodium opens it), never in clear.
    expect(res.body).not.toHaveProperty('device_key');
    const deviceKey = sodium.crypto_box_seal_open(
      Buffer.from(res.body.sealed_device_key, 'base64url'),
      keys.sealing.publicKey,
      keys.sealing.privateKey,
      'text',
    ) as string;
    expect(deviceKey).toMatch(/^apdk_/);
    // The key works, and the code is spent.
    expect((await svc.post('/agents/get', {}, svc.device(deviceKey))).body.agent_id).toBe(
      'agent-a',
    );
    const again = await svc.post(
      '/device/enroll',
      enrollBody(enrollment.code, generateDeviceKeys()),
    );
    expect(again.status).toBe(401);
    const actions = (await svc.store.auditEvents(100)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['device.enrollment_create', 'device.enroll']));
  });

  it('refuses a fingerprint mismatch with 409, keeps the code usable, and audits the attempt', async () => {
    const right = generateDeviceKeys();
    const wrong = generateDeviceKeys();
    const { code } = await newEnrollment({
      expected_fingerprint: deviceFingerprint(right.sealing.publicKey, right.signing.publicKey),
    });
    const res = await svc.post('/device/enroll', enrollBody(code, wrong));
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({
      code: 'failed_precondition',
      details: { reason: 'fingerprint_mismatch' },
    });
    const mismatch = (await svc.store.auditEvents(100)).find(
      (e) => e.action === 'device.enroll_mismatch',
    );
    expect(mismatch?.details).toMatchObject({
      presented_fingerprint: deviceFingerprint(wrong.sealing.publicKey, wrong.signing.publicKey),
    });
    expect((await svc.post('/device/enroll', enrollBody(code, right))).status).toBe(201);
  });

  it('refuses unknown, malformed and expired codes with 401', async () => {
    const keys = generateDeviceKeys();
    expect(
      (await svc.post('/device/enroll', enrollBody(`apen_${'A'.repeat(43)}`, keys))).status,
    ).toBe(401);
    expect((await svc.post('/device/enroll', enrollBody('not-a-code', keys))).status).toBe(401);
    const { code } = await newEnrollment({ ttl_seconds: 60 });
    clock.advance(60_000);
    expect((await svc.post('/device/enroll', enrollBody(code, keys))).status).toBe(401);
    expect(svc.logs.some((l) => l.includes('"reason":"expired"'))).toBe(true);
  });

  it('refuses bad keys with 400 and leaves the code unused', async () => {
    const keys = generateDeviceKeys();
    const { code } = await newEnrollment();
    const zero = b64(new Uint8Array(32));
    const smallOrderX25519 = 'X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc'; // order 8 point (libsodium blocklist)
    const nonCanonicalEd25519 = b64(
      Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 0xed : i === 31 ? 0x7f : 0xff)),
    );
    for (const body of [
      { ...enrollBody(code, keys), sealing_public_key: zero },
      { ...enrollBody(code, keys), sealing_public_key: smallOrderX25519 },
      { ...enrollBody(code, keys), signing_public_key: nonCanonicalEd25519 },
      { ...enrollBody(code, keys), signing_public_key: b64(new Uint8Array(31)) },
      { ...enrollBody(code, keys), sealing_public_key: `${b64(keys.sealing.publicKey)}=` },
    ]) {
      const res = await svc.post('/device/enroll', body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
    }
    expect((await svc.post('/device/enroll', enrollBody(code, keys))).status).toBe(201);
  });

  it('rotates by evict and re-enroll: replaces_key_id revokes the old key in the same step', async () => {
    const old = await enroll();
    const next = await enroll(generateDeviceKeys(), { replaces_key_id: old.key_id });
    expect((await svc.post('/agents/get', {}, svc.device(old.device_key))).status).toBe(401);
    expect((await svc.post('/agents/get', {}, svc.device(next.device_key))).status).toBe(200);
    const evict = (await svc.store.auditEvents(100)).find((e) => e.action === 'device.evict');
    expect(evict?.target).toEqual({ agent_id: 'agent-a', key_id: old.key_id });
    // Another agent's key cannot be named.
    const b = (await svc.post('/device/issue', { agent_id: 'agent-b' }, svc.bridge)).body;
    expect(
      (
        await svc.post(
          '/device/enrollments/create',
          { agent_id: 'agent-a', replaces_key_id: b.key_id },
          svc.bridge,
        )
      ).status,
    ).toBe(404);
  });

  it('is bridge-only to create, and a disabled agent cannot enroll', async () => {
    const device = await enroll();
    expect(
      (
        await svc.post(
          '/device/enrollments/create',
          { agent_id: 'agent-a' },
          svc.device(device.device_key),
        )
      ).status,
    ).toBe(403);
    const { code } = await newEnrollment();
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect((await svc.post('/device/enroll', enrollBody(code, generateDeviceKeys()))).status).toBe(
      403,
    );
  });
});

describe('sealed delivery', () => {
  it('seals /secrets/get and /secrets/resolve to the device key; libsodium opens them', async () => {
    const device = await enroll();
    await svc.post(
      '/secrets/put',
      { name: 'api', value: 'sk-sealed-ünïcode' },
      svc.device(device.device_key),
    );
    const res = await svc.post(
      '/secrets/get',
      { name: 'api', seal: true },
      svc.device(device.device_key),
    );
    expect(res.status).toBe(200);
    expect(res.body.value).toBeUndefined();
    expect(res.text).not.toContain('sk-sealed');
    const opened = sodium.crypto_box_seal_open(
      Buffer.from(res.body.sealed, 'base64url'),
      device.keys.sealing.publicKey,
      device.keys.sealing.privateKey,
    );
    expect(Buffer.from(opened).toString('utf8')).toBe('sk-sealed-ünïcode');
    const resolved = await svc.post(
      '/secrets/resolve',
      { refs: ['agentpack.secret://agent-a/api'], seal: true },
      svc.device(device.device_key),
    );
    const box = Buffer.from(resolved.body.values[0].sealed, 'base64url');
    expect(
      Buffer.from(
        sodium.crypto_box_seal_open(
          box,
          device.keys.sealing.publicKey,
          device.keys.sealing.privateKey,
        ),
      ).toString(),
    ).toBe('sk-sealed-ünïcode');
    // Another device's key cannot open it.
    const other = generateDeviceKeys();
    expect(() =>
      sodium.crypto_box_seal_open(box, other.sealing.publicKey, other.sealing.privateKey),
    ).toThrow();
  });

  it('refuses seal: true with no pinned key (a plain device key or a token): never a clear fallback', async () => {
    const plain = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body
      .device_key;
    await svc.post('/secrets/put', { name: 'api', value: 'v' }, svc.device(plain));
    const res = await svc.post('/secrets/get', { name: 'api', seal: true }, svc.device(plain));
    expect(res.status).toBe(403);
    expect(res.text).not.toContain('"value"');
    const token = mintTestToken({ sub: 'agent-a', scope: ['secrets/get'], nowMs: clock.now() });
    expect(
      (await svc.post('/secrets/get', { name: 'api', seal: true }, bearer(token))).status,
    ).toBe(403);
  });

  it('with secrets.require_sealed, refuses clear reads and tokens, and serves sealed ones', async () => {
    const device = await enroll();
    await svc.post('/secrets/put', { name: 'api', value: 'v-req' }, svc.device(device.device_key));
    await svc.post('/settings/set', { key: 'secrets.require_sealed', value: true }, svc.bridge);
    const clear = await svc.post('/secrets/get', { name: 'api' }, svc.device(device.device_key));
    expect(clear.status).toBe(403);
    expect(clear.text).not.toContain('v-req');
    const token = mintTestToken({ sub: 'agent-a', scope: ['secrets/get'], nowMs: clock.now() });
    expect((await svc.post('/secrets/get', { name: 'api' }, bearer(token))).status).toBe(403);
    expect(
      (
        await svc.post(
          '/secrets/resolve',
          { refs: ['agentpack.secret://agent-a/api'] },
          svc.device(device.device_key),
        )
      ).status,
    ).toBe(403);
    const sealed = await svc.post(
      '/secrets/get',
      { name: 'api', seal: true },
      svc.device(device.device_key),
    );
    expect(sealed.status).toBe(200);
    expect(typeof sealed.body.sealed).toBe('string');
  });
});

describe('signed requests', () => {
  it('accepts a good signature, and refuses a replayed, stale or tampered one (401)', async () => {
    const device = await enroll();
    expect((await signedPost('/agents/get', {}, device)).status).toBe(200);
    // Replay: the same headers again.
    const raw = Buffer.from('{}');
    const headers = signRequest({
      method: 'POST',
      path: '/agents/get',
      body: raw,
      signingSeed: device.keys.signing.privateKey,
      nowMs: clock.now(),
    });
    const send = (h: object, body = raw, path = '/agents/get') =>
      svc.request(path, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-agentpack-device-key': device.device_key,
          ...(h as Record<string, string>),
        },
        body,
      });
    expect((await send(headers)).status).toBe(200);
    expect((await send(headers)).status).toBe(401);
    expect(svc.logs.some((l) => l.includes('"reason":"replayed_nonce"'))).toBe(true);
    // Stale and future timestamps.
    expect((await signedPost('/agents/get', {}, device, {}, clock.now() - 61_000)).status).toBe(
      401,
    );
    expect((await signedPost('/agents/get', {}, device, {}, clock.now() + 61_000)).status).toBe(
      401,
    );
    expect((await signedPost('/agents/get', {}, device, {}, clock.now() - 59_000)).status).toBe(
      200,
    );
    // Tampered body, path, timestamp or signature.
    const fresh = () =>
      signRequest({
        method: 'POST',
        path: '/agents/get',
        body: raw,
        signingSeed: device.keys.signing.privateKey,
        nowMs: clock.now(),
      });
    expect((await send(fresh(), Buffer.from('{ }'))).status).toBe(401);
    expect((await send(fresh(), raw, '/device/revoke')).status).toBe(401);
    const h = fresh();
    expect(
      (
        await send({
          ...h,
          'x-agentpack-timestamp': String(Number(h['x-agentpack-timestamp']) + 1),
        })
      ).status,
    ).toBe(401);
    const sig = h['x-agentpack-signature']!;
    expect(
      (
        await send({
          ...h,
          'x-agentpack-signature': `${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`,
        })
      ).status,
    ).toBe(401);
    // Signed by another key.
    const impostor = { keys: generateDeviceKeys(), device_key: device.device_key };
    expect((await signedPost('/agents/get', {}, impostor)).status).toBe(401);
    // Partial headers.
    const { 'x-agentpack-nonce': _n, ...partial } = fresh();
    expect((await send(partial)).status).toBe(401);
  });

  it('with device.require_signed_requests, an enrolled device key alone is useless', async () => {
    const device = await enroll();
    const plain = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body
      .device_key;
    await svc.post(
      '/settings/set',
      { key: 'device.require_signed_requests', value: true },
      svc.bridge,
    );
    expect((await svc.post('/agents/get', {}, svc.device(device.device_key))).status).toBe(401);
    expect(svc.logs.some((l) => l.includes('"reason":"signature_required"'))).toBe(true);
    expect((await signedPost('/agents/get', {}, device)).status).toBe(200);
    // Sealed read with a signed request, the whole stronger path at once.
    await svc.post('/secrets/put', { name: 'api', value: 'v' }, svc.device(plain));
    expect((await signedPost('/secrets/get', { name: 'api', seal: true }, device)).status).toBe(
      200,
    );
    // A plain bearer key (not enrolled) is not affected by this setting.
    expect((await svc.post('/agents/get', {}, svc.device(plain))).status).toBe(200);
  });
});

describe('/attestations/verify', () => {
  const base = {
    job_id: 'job-42',
    input_sha256: 'a'.repeat(64),
    output_sha256: 'b'.repeat(64),
    rc: 0,
  };

  it('verifies a device attestation and refuses any tampered field', async () => {
    const device = await enroll();
    const signature = signAttestation(base, device.keys.signing.privateKey);
    const ok = await svc.post(
      '/attestations/verify',
      { key_id: device.key_id, ...base, signature },
      svc.bridge,
    );
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({
      valid: true,
      agent_id: 'agent-a',
      key_id: device.key_id,
      fingerprint: device.fingerprint,
    });
    for (const change of [
      { job_id: 'job-43' },
      { input_sha256: 'c'.repeat(64) },
      { output_sha256: 'c'.repeat(64) },
      { rc: 1 },
    ]) {
      const res = await svc.post(
        '/attestations/verify',
        { key_id: device.key_id, ...base, ...change, signature },
        svc.bridge,
      );
      expect(res.body, JSON.stringify(change)).toMatchObject({
        valid: false,
        reason: 'bad_signature',
      });
    }
    const flipped = `${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`;
    expect(
      (
        await svc.post(
          '/attestations/verify',
          { key_id: device.key_id, ...base, signature: flipped },
          svc.bridge,
        )
      ).body.valid,
    ).toBe(false);
  });

  it('answers valid: false, reason key_revoked, once the key is revoked; unknown_key for an unknown key', async () => {
    const device = await enroll();
    const signature = signAttestation(base, device.keys.signing.privateKey);
    await svc.post('/device/revoke', { key_id: device.key_id }, svc.bridge);
    const res = await svc.post(
      '/attestations/verify',
      { key_id: device.key_id, ...base, signature },
      svc.bridge,
    );
    expect(res.body).toMatchObject({ valid: false, reason: 'key_revoked' });
    const unknown = await svc.post(
      '/attestations/verify',
      { key_id: 'dk_AAAAAAAAAAAAAAAA', ...base, signature },
      svc.bridge,
    );
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual({ valid: false, reason: 'unknown_key' });
  });
});
