/**
 * Secrets never leak: after a session that mints, uses, rotates, revokes and fails on purpose,
 * no bridge key or device key appears in any log line, any response other than the one that
 * issued it, any audit row, or the database files.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BRIDGE_KEY, BRIDGE_KEY_2, startTestService, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

const SECRET_VALUE = 'sk-live-never-leak-4f9a2c7e1b';
const TOKEN = mintTestToken({ sub: 'agent-a', scope: ['secrets/get:api_key'], nowMs: Date.now() });

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

describe('no secret leaves its place', () => {
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
