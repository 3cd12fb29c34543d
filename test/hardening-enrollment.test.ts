/**
 * Hardening 0.2, "Enrollment answers sealed" (finding 4): `/device/enroll` answers the new
 * device key only as `sealed_device_key` (libsodium `crypto_box_seal` to the enrolling
 * `sealing_public_key`), never as a clear `device_key`. So a party that relays the code and the
 * device's true public keys — passing the fingerprint check — gets nothing it can use; only the
 * device, holding the sealing private key, opens it. `/device/issue` still answers in clear.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  deviceFingerprint,
  generateDeviceKeys,
  isWellFormedDeviceKey,
  openSealed,
} from '@agentpack-identity/protocol';
import { killLiveProcesses, runNode } from './helpers/cli-process.js';
import { startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

const require = createRequire(import.meta.url);
// libsodium-wrappers' ESM entry does not load on Node 20; its CommonJS entry does.
const sodium = require('libsodium-wrappers') as any;

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

let svc: TestService;
const tmp = tempDir('agentpack-hardening-enroll-');
beforeAll(async () => {
  await sodium.ready;
});
beforeEach(async () => {
  svc = await startTestService();
  expect(
    (await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge))
      .status,
  ).toBe(201);
});
afterEach(async () => {
  await killLiveProcesses();
  await svc.close();
});
afterAll(() => tmp.remove());

async function code(extra: Record<string, unknown> = {}): Promise<string> {
  const res = await svc.post(
    '/device/enrollments/create',
    { agent_id: 'agent-a', ...extra },
    svc.bridge,
  );
  expect(res.status).toBe(201);
  return res.body.code;
}

describe('/device/enroll answers the device key sealed to the enrolling device', () => {
  it('gives a relaying party with the code and the device’s true public keys nothing it can use', async () => {
    // The device's keys; the operator pins its fingerprint, so only its true public keys pass.
    const device = generateDeviceKeys();
    const fingerprint = deviceFingerprint(device.sealing.publicKey, device.signing.publicKey);
    const enrollCode = await code({ expected_fingerprint: fingerprint });

    // The relay presents the code and the device's true public keys on its behalf.
    const res = await svc.post('/device/enroll', {
      code: enrollCode,
      sealing_public_key: b64(device.sealing.publicKey),
      signing_public_key: b64(device.signing.publicKey),
    });
    expect(res.status).toBe(201);
    expect(res.body.fingerprint).toBe(fingerprint);
    // No clear key in the answer, under any name.
    expect(res.body).not.toHaveProperty('device_key');
    expect(res.text).not.toMatch(/apdk_/);
    expect(Object.keys(res.body).sort()).toEqual(
      [
        'agent_id',
        'created_at',
        'expires_at',
        'fingerprint',
        'key_id',
        'label',
        'sealed_device_key',
      ].sort(),
    );
    const sealed = Buffer.from(res.body.sealed_device_key, 'base64url');
    expect(sealed.toString('base64url')).toBe(res.body.sealed_device_key);

    // Nothing in the answer authenticates: every string in it, tried as a device key, is 401.
    for (const value of Object.values(res.body)) {
      if (typeof value !== 'string') continue;
      expect((await svc.post('/agents/get', {}, svc.device(value))).status).toBe(401);
    }

    // Only the device's private sealing key opens it (libsodium's crypto_box_seal_open)...
    const relay = generateDeviceKeys();
    expect(() =>
      sodium.crypto_box_seal_open(sealed, relay.sealing.publicKey, relay.sealing.privateKey),
    ).toThrow();
    expect(openSealed(sealed, device.sealing.publicKey, relay.sealing.privateKey)).toBeNull();
    const deviceKey = sodium.crypto_box_seal_open(
      sealed,
      device.sealing.publicKey,
      device.sealing.privateKey,
      'text',
    ) as string;
    // ...and what it holds is a device key of the agent, shown nowhere else.
    expect(isWellFormedDeviceKey(deviceKey)).toBe(true);
    expect((await svc.post('/agents/get', {}, svc.device(deviceKey))).body.agent_id).toBe(
      'agent-a',
    );
    expect(svc.logs.join('\n')).not.toContain(deviceKey);
    expect(JSON.stringify(await svc.store.auditEvents(100))).not.toContain(deviceKey);
  });

  it('seals each answer afresh to the key in that request', async () => {
    const one = generateDeviceKeys();
    const two = generateDeviceKeys();
    const answers = [];
    for (const device of [one, two]) {
      const res = await svc.post('/device/enroll', {
        code: await code(),
        sealing_public_key: b64(device.sealing.publicKey),
        signing_public_key: b64(device.signing.publicKey),
      });
      expect(res.status).toBe(201);
      answers.push(Buffer.from(res.body.sealed_device_key, 'base64url'));
    }
    // Each opens with its own device's key only.
    expect(openSealed(answers[0]!, one.sealing.publicKey, one.sealing.privateKey)).not.toBeNull();
    expect(openSealed(answers[1]!, two.sealing.publicKey, two.sealing.privateKey)).not.toBeNull();
    expect(openSealed(answers[0]!, two.sealing.publicKey, two.sealing.privateKey)).toBeNull();
    expect(openSealed(answers[1]!, one.sealing.publicKey, one.sealing.privateKey)).toBeNull();
  });

  it('leaves /device/issue answering a clear device_key', async () => {
    const res = await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge);
    expect(res.status).toBe(201);
    expect(isWellFormedDeviceKey(res.body.device_key)).toBe(true);
    expect(res.body).not.toHaveProperty('sealed_device_key');
  });

  it('is opened by the CLI’s device enroll, which writes the key exactly as before', async () => {
    const dir = join(tmp.dir, 'device');
    const keygen = await runNode(['device', 'keygen', '--out', dir]);
    expect(keygen.code, keygen.stderr).toBe(0);
    const enroll = await runNode([
      'device',
      'enroll',
      '--url',
      svc.url,
      '--code',
      await code({ expected_fingerprint: JSON.parse(keygen.stdout).fingerprint }),
      '--keys',
      dir,
    ]);
    expect(enroll.code, enroll.stderr).toBe(0);
    const written = readFileSync(join(dir, 'device-key'), 'utf8');
    expect(written).toMatch(/^apdk_[A-Za-z0-9_-]+\n$/);
    const key = written.trim();
    expect(isWellFormedDeviceKey(key)).toBe(true);
    expect(enroll.stdout + enroll.stderr).not.toContain(key);
    expect((await svc.post('/agents/get', {}, svc.device(key))).body.agent_id).toBe('agent-a');
  });
});
