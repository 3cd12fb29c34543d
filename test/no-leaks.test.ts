/**
 * Secrets never leak: after a session that mints, uses, rotates, revokes and fails on purpose,
 * no bridge key or device key appears in any log line, any response other than the one that
 * issued it, any audit row, or the database files.
 *
 * And the capture: a scripted session over every route and every kind of failure, on several
 * services (one on a frozen clock, one pruning versions, each on a keyring that records every
 * data key), with every log line and response body kept; no bridge key, device key, enrollment
 * code, data key, key-encryption key, capability token, private key or secret value appears
 * anywhere it is not meant to.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentsAndDeviceKeys,
  disableAndExpiry,
  issueTokens,
  transportRefusals,
} from './helpers/fuzz-capture-credentials.js';
import { enrolledDevices, runs } from './helpers/fuzz-capture-devices.js';
import {
  delegations,
  secrets,
  settingsAndPublicDocuments,
} from './helpers/fuzz-capture-secrets.js';
import { encodings, newCapture, openSession, type Variant } from './helpers/fuzz-capture.js';
import { BRIDGE_KEY, BRIDGE_KEY_2, startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

const SECRET_VALUE = 'sk-live-never-leak-4f9a2c7e1b';
const TOKEN = mintTestToken({ sub: 'agent-a', scope: ['secrets/get:api_key'], nowMs: Date.now() });

describe('no secret leaves its place', () => {
  let svc: TestService;
  const deviceKeys: string[] = [];
  let issuingResponses = 0;

  beforeAll(async () => {
    svc = await startTestService();
    await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge);
    for (let i = 0; i < 3; i++) {
      const res = await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge);
      deviceKeys.push(res.body.device_key);
      issuingResponses++;
    }
    const rotated = await svc.post('/device/issue', { rotate: true }, svc.device(deviceKeys[0]!));
    deviceKeys.push(rotated.body.device_key);
    issuingResponses++;
    // Failures of every kind, each carrying a real key somewhere it must not echo.
    await svc.post('/agents/get', {}, svc.device(deviceKeys[0]!)); // revoked by rotation
    await svc.post('/agents/create', { display_name: 'x' }, svc.device(deviceKeys[1]!));
    await svc.post(
      '/agents/create',
      { display_name: deviceKeys[2] },
      { 'x-agentpack-key': `${BRIDGE_KEY}x` },
    );
    await svc.post('/agents/create', { display_name: 'x', [BRIDGE_KEY_2]: 1 }, svc.bridge);
    await svc.post('/agents/get', {}, { ...svc.bridge, ...svc.device(deviceKeys[1]!) });
    await svc.post('/device/revoke', { key_id: deviceKeys[3] }, svc.bridge);
    await svc.post('/device/revoke', {}, svc.device(deviceKeys[2]!));
    // Secrets and tokens: values written and read back, a token used and refused.
    await svc.post(
      '/secrets/put',
      { name: 'api_key', value: SECRET_VALUE },
      svc.device(deviceKeys[1]!),
    );
    await svc.post('/secrets/get', { name: 'api_key' }, svc.device(deviceKeys[1]!));
    await svc.post(
      '/secrets/put',
      { name: 'bad name', value: SECRET_VALUE },
      svc.device(deviceKeys[1]!),
    );
    await svc.post(
      '/secrets/put',
      { name: 'api_key', value: SECRET_VALUE, cas: 0 },
      svc.device(deviceKeys[1]!),
    );
    await svc.post('/secrets/get', { name: 'api_key' }, bearer(TOKEN));
    await svc.post('/secrets/put', { name: 'api_key', value: SECRET_VALUE }, bearer(TOKEN));
    await svc.post('/agents/get', {}, bearer(`${TOKEN}x`));
  });
  afterAll(async () => {
    await svc.close();
  });

  it('keeps every key out of the logs', () => {
    const logs = svc.logs.join('');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of [BRIDGE_KEY, BRIDGE_KEY_2, ...deviceKeys])
      expect(logs).not.toContain(secret);
  });

  it('shows a device key only in the response that issued it', () => {
    for (const key of deviceKeys) {
      expect(svc.responses.filter((r) => r.includes(key))).toHaveLength(1);
    }
    for (const bridge of [BRIDGE_KEY, BRIDGE_KEY_2]) {
      expect(svc.responses.some((r) => r.includes(bridge))).toBe(false);
    }
    expect(issuingResponses).toBe(4);
  });

  it('keeps every key, token and secret value out of the audit rows and the database files', async () => {
    const audit = JSON.stringify(await svc.store.auditEvents(100));
    for (const secret of [BRIDGE_KEY, BRIDGE_KEY_2, ...deviceKeys])
      expect(audit).not.toContain(secret);
    for (const file of readdirSync(svc.dataDir)) {
      const bytes = readFileSync(join(svc.dataDir, file));
      for (const secret of [BRIDGE_KEY, BRIDGE_KEY_2, ...deviceKeys]) {
        expect(bytes.includes(Buffer.from(secret)), `${file}`).toBe(false);
      }
    }
  });
});

describe('capture: no key, data key or secret value where it does not belong', () => {
  const capture = newCapture();
  const services: TestService[] = [];

  afterAll(async () => {
    for (const svc of services) await svc.close();
  });

  /** One scripted session: every route, success and failure, on a fresh service. */
  async function session(variant: Variant, n: number): Promise<void> {
    const s = await openSession(capture, services, variant, n);
    const keys = await agentsAndDeviceKeys(s);
    const tokens = await issueTokens(s, keys);
    const v3 = await secrets(s, keys, tokens.token);
    const dgHeaders = await delegations(s, keys, tokens.token, v3);
    const latest = await settingsAndPublicDocuments(s, keys, v3);
    await transportRefusals(s, keys);
    await enrolledDevices(s, keys, tokens.token, latest);
    await runs(s, keys, latest, dgHeaders);
    await disableAndExpiry(s, keys, tokens, dgHeaders);
  }

  it('runs the whole session on three services, each answering as the contract says', async () => {
    await session('plain', 0);
    await session('clock', 1);
    await session('pruning', 2);
    for (const svc of services) capture.logs.push(...svc.logs);
    expect(capture.responses.length).toBeGreaterThan(300);
    expect(capture.deviceKeys.length).toBeGreaterThan(15);
    expect(capture.dataKeys.length).toBeGreaterThan(10);
  });

  it('keeps every bridge key, device key, token, data key, KEK and secret value out of the logs', () => {
    const logs = capture.logs.join('\n');
    expect(capture.logs.length).toBeGreaterThan(50);
    expect(logs).toContain('auth.failed');
    expect(logs).toContain('request.failed'); // the injected key service failure
    const secrets = [
      BRIDGE_KEY,
      BRIDGE_KEY_2,
      ...capture.deviceKeys,
      ...capture.sealedDeviceKeys,
      ...capture.tokens,
      ...capture.codes,
      ...capture.values,
      ...capture.dataKeys.flatMap(encodings),
      ...capture.keks.flatMap(encodings),
      ...capture.privateKeys.flatMap((k) => encodings(Buffer.from(k))),
    ];
    const found = secrets.filter((s) => logs.includes(s));
    expect(found).toEqual([]);
  });

  it('shows an enrollment code only in the response that created it, and a private key nowhere', () => {
    expect(capture.codes.length).toBeGreaterThan(0);
    for (const code of capture.codes) {
      const shown = capture.responses.filter((r) => r.text.includes(code));
      expect(shown.map((r) => r.what)).toHaveLength(1);
      expect(JSON.parse(shown[0]!.text).code).toBe(code);
    }
    const keys = capture.privateKeys.flatMap((k) => encodings(Buffer.from(k)));
    const everywhere = [...capture.logs, ...capture.responses.map((r) => r.text)].join('\n');
    expect(keys.filter((k) => everywhere.includes(k))).toEqual([]);
    expect(capture.logs.join('\n').includes(capture.codes[0]!)).toBe(false);
  });

  it('shows a device key only in the response that issued it (an enrolled one in none), and never a bridge key, token, data key or KEK', () => {
    for (const key of capture.deviceKeys) {
      const shown = capture.responses.filter((r) => r.text.includes(key));
      expect(
        shown.map((r) => r.what),
        key.slice(0, 9),
      ).toHaveLength(1);
      expect(shown[0]!.status).toBe(201);
      expect(JSON.parse(shown[0]!.text).device_key).toBe(key);
    }
    // An enrolled device's key is answered only sealed to the device: in clear, nowhere.
    expect(capture.sealedDeviceKeys.length).toBeGreaterThan(0);
    for (const key of capture.sealedDeviceKeys) {
      const shown = capture.responses.filter((r) => r.text.includes(key));
      expect(
        shown.map((r) => r.what),
        key.slice(0, 9),
      ).toEqual([]);
    }
    const never = [
      BRIDGE_KEY,
      BRIDGE_KEY_2,
      ...capture.tokens,
      ...capture.dataKeys.flatMap(encodings),
      ...capture.keks.flatMap(encodings),
    ];
    const leaks = capture.responses.filter((r) => never.some((s) => r.text.includes(s)));
    expect(leaks.map((r) => r.what)).toEqual([]);
  });

  it('shows a secret value only in a successful read of that value', () => {
    const leaks: string[] = [];
    for (const value of capture.values) {
      for (const r of capture.responses.filter((x) => x.text.includes(value))) {
        const body = JSON.parse(r.text);
        const shows =
          r.status === 200 &&
          (body.value === value ||
            (Array.isArray(body.values) && body.values.some((x: any) => x.value === value)));
        if (!shows) leaks.push(`${r.what} (${r.status})`);
      }
    }
    expect(leaks).toEqual([]);
    // And the reads did show them: the capture is not vacuous.
    expect(capture.responses.some((r) => capture.values.some((v) => r.text.includes(v)))).toBe(
      true,
    );
  });

  it('keeps every key, value and data key out of the audit rows and the database files', async () => {
    const secrets = [
      BRIDGE_KEY,
      BRIDGE_KEY_2,
      ...capture.deviceKeys,
      ...capture.sealedDeviceKeys,
      ...capture.tokens,
      ...capture.codes,
      ...capture.values,
    ];
    for (const store of capture.stores) {
      const audit = JSON.stringify(await store.auditEvents(100_000));
      expect(audit.length).toBeGreaterThan(100);
      expect(secrets.filter((s) => audit.includes(s))).toEqual([]);
    }
    for (const dir of capture.dataDirs) {
      for (const file of readdirSync(dir)) {
        const bytes = readFileSync(join(dir, file));
        const found = [
          ...secrets.filter((s) => bytes.includes(Buffer.from(s))),
          ...capture.dataKeys.filter((k) => bytes.includes(k)).map(() => 'a raw data key'),
          ...capture.dataKeys
            .flatMap(encodings)
            .filter((e) => bytes.includes(Buffer.from(e)))
            .map(() => 'an encoded data key'),
          ...capture.keks.filter((k) => bytes.includes(k)).map(() => 'a raw KEK'),
        ];
        expect(found, file).toEqual([]);
      }
    }
  });
});
