/**
 * The deployed shape: the built `functions/dist/index.js` (the deploy bundle) served by the Functions Framework (the
 * server Cloud Functions 2nd gen runs), over the Firestore adapter against
 * @firestore-emulator/server. Trigger, firebase-functions, firebase-admin and our adapter all
 * run for real.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChild, waitForHttp, type Child } from './helpers/child.js';
import {
  freePort,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from './helpers/firestore-emulator.js';
import { BRIDGE_KEY } from './helpers/service.js';
import { bearer, mintTestToken, TEST_JWKS } from './helpers/tokens.js';
import { generateSigningKeysText } from '../functions/src/adapters/local-signer.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const frameworkBin = join(dirname(require.resolve('@google-cloud/functions-framework')), 'main.js');

let emulator: FirestoreEmulator;
let fn: Child;
let url: string;

beforeAll(async () => {
  emulator = await startFirestoreEmulator();
  const port = await freePort();
  fn = startChild(
    process.execPath,
    [frameworkBin, '--target=identity', `--source=${join(root, 'functions')}`, `--port=${port}`],
    {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      FIRESTORE_EMULATOR_HOST: emulator.host,
      GCLOUD_PROJECT: 'demo-agentpack',
      AGENTPACK_BRIDGE_KEYS: BRIDGE_KEY,
      AGENTPACK_SECRETS_KEK: randomBytes(32).toString('base64url'),
      AGENTPACK_DIGEST_KEY: randomBytes(32).toString('base64url'),
      AGENTPACK_CAPABILITY_KEYS: TEST_JWKS,
      AGENTPACK_ISSUER_URL: 'https://identity.example.test',
      AGENTPACK_SIGNING_KEY: generateSigningKeysText(),
      NODE_ENV: 'production',
    },
  );
  url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, fn);
});

afterAll(async () => {
  await fn?.stop();
  await emulator?.stop();
});

const post = async (path: string, body: unknown, headers: Record<string, string>) => {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any, headers: res.headers };
};

describe('the identity Cloud Function', () => {
  it('runs the main flow on Firestore: agents, keys, rotation, secrets, delegation, token, revoke, disable', async () => {
    const bridge = { 'x-agentpack-key': BRIDGE_KEY };
    const created = await post(
      '/agents/create',
      { display_name: 'Cloud', agent_id: 'cloud-agent' },
      bridge,
    );
    expect(created.status).toBe(201);
    const issued = await post('/device/issue', { agent_id: 'cloud-agent' }, bridge);
    expect(issued.status).toBe(201);
    const dk = { 'x-agentpack-device-key': issued.body.device_key };
    const got = await post('/agents/get', { agent_id: 'someone-else' }, dk);
    expect(got.body.agent_id).toBe('cloud-agent');
    const rotated = await post('/device/issue', { rotate: true }, dk);
    expect(rotated.status).toBe(201);
    expect((await post('/agents/get', {}, dk)).status).toBe(401);
    const dk2 = { 'x-agentpack-device-key': rotated.body.device_key };
    expect((await post('/agents/get', {}, dk2)).status).toBe(200);
    // Secrets, a delegation and a capability token, all on Firestore.
    expect((await post('/secrets/put', { name: 'api_key', value: 'v-1' }, dk2)).body.version).toBe(
      1,
    );
    expect(
      (await post('/secrets/put', { name: 'api_key', value: 'v-2', cas: 1 }, dk2)).body.version,
    ).toBe(2);
    expect((await post('/secrets/get', { name: 'api_key' }, dk2)).body.value).toBe('v-2');
    await post('/agents/create', { display_name: 'Peer', agent_id: 'peer-agent' }, bridge);
    const peer = await post('/device/issue', { agent_id: 'peer-agent' }, bridge);
    const grant = await post(
      '/delegate',
      { to_agent: 'peer-agent', scope: ['secrets/get:api_key'], ttl_seconds: 60 },
      dk2,
    );
    expect(grant.status).toBe(201);
    const viaPeer = {
      'x-agentpack-device-key': peer.body.device_key,
      'x-agentpack-delegation': grant.body.delegation_id,
    };
    expect((await post('/secrets/get', { name: 'api_key' }, viaPeer)).body.value).toBe('v-2');
    expect(
      (await post('/delegate/revoke', { delegation_id: grant.body.delegation_id }, dk2)).status,
    ).toBe(200);
    expect((await post('/secrets/get', { name: 'api_key' }, viaPeer)).status).toBe(403);
    const token = mintTestToken({
      sub: 'cloud-agent',
      scope: ['secrets/get:api_key'],
      nowMs: Date.now(),
    });
    expect(
      (await post('/secrets/get', { name: 'api_key', version: 1 }, bearer(token))).body.value,
    ).toBe('v-1');
    const wellKnown = await fetch(`${url}/.well-known/agentpack-identity`);
    // The capability key and the run-token signing key (AGENTPACK_SIGNING_KEY here).
    const published = ((await wellKnown.json()) as any).jwks.keys.map((k: any) => k.alg);
    expect(published.sort()).toEqual(['ES256', 'EdDSA']);
    const discovery = (await (
      await fetch(`${url}/.well-known/openid-configuration`)
    ).json()) as any;
    expect(discovery.issuer).toBe('https://identity.example.test');
    expect((await post('/agents/disable', { agent_id: 'cloud-agent' }, bridge)).status).toBe(200);
    expect((await post('/agents/get', {}, dk2)).status).toBe(403);
    expect((await post('/device/revoke', { key_id: rotated.body.key_id }, bridge)).status).toBe(
      200,
    );
  });

  it('answers the contract errors as JSON', async () => {
    const noCred = await post('/agents/get', {}, {});
    expect(noCred.status).toBe(401);
    expect(noCred.body.error.code).toBe('unauthenticated');
    const wrongMethod = await fetch(`${url}/agents/get`);
    expect(wrongMethod.status).toBe(405);
    expect(((await wrongMethod.json()) as any).error.code).toBe('method_not_allowed');
    const unknown = await post('/nope', {}, {});
    expect(unknown.status).toBe(404);
    const media = await fetch(`${url}/agents/get`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(media.status).toBe(415);
  });

  it('is refused by the framework, before our code, for malformed JSON: a 400 that writes nothing', async () => {
    // The Functions Framework parses application/json bodies itself and answers its own 400
    // (not our JSON error shape) when parsing fails. Documented in docs/api.md.
    const res = await fetch(`${url}/agents/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-agentpack-key': BRIDGE_KEY },
      body: '{"display_name":"x","agent_id":"half-agent"',
    });
    expect(res.status).toBe(400);
    const check = await post(
      '/agents/get',
      { agent_id: 'half-agent' },
      { 'x-agentpack-key': BRIDGE_KEY },
    );
    expect(check.status).toBe(404);
  });
});
