/**
 * The deployed shape, end to end, under the real Firebase Functions emulator: the built
 * `functions/dist` (the deploy bundle) loaded by `firebase emulators:exec --only functions` (firebase-tools), its
 * `identity` trigger given its secret (`AGENTPACK_BRIDGE_KEYS`, from `.secret.local`) and params
 * the emulator's way, and the Firestore adapter talking to @firestore-emulator/server through
 * FIRESTORE_EMULATOR_HOST. Every request goes over HTTP through the emulator's router.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFirestoreEmulator, type FirestoreEmulator } from './helpers/firestore-emulator.js';
import { startFunctionsEmulator, type FunctionsEmulator } from './helpers/functions-emulator.js';
import { bearer, mintTestToken, TEST_JWKS, TEST_KID } from './helpers/tokens.js';
import { generateSigningKeysText } from '../functions/src/adapters/local-signer.js';

const PROJECT = 'demo-agentpack';
const BRIDGE_KEY = `e2e-bridge-${randomBytes(24).toString('base64url')}`;
const SECRETS_KEK = randomBytes(32).toString('base64url');
const VALUE_1 = `e2e-value-one-${randomBytes(12).toString('hex')}`;
const VALUE_2 = `e2e-value-two-${randomBytes(12).toString('hex')}`;
const OTHER_VALUE = `e2e-other-${randomBytes(12).toString('hex')}`;

let firestore: FirestoreEmulator;
let functions: FunctionsEmulator;
let base: string;

beforeAll(async () => {
  firestore = await startFirestoreEmulator();
  functions = await startFunctionsEmulator({
    projectId: PROJECT,
    secrets: {
      AGENTPACK_BRIDGE_KEYS: BRIDGE_KEY,
      AGENTPACK_DIGEST_KEY: randomBytes(32).toString('base64url'),
    },
    env: {
      // The defineString param: empty means "no KMS" (config refuses KMS and a KEK together),
      // and it must be present, or the emulator prompts for it and cannot load the function.
      AGENTPACK_KMS_KEY: '',
      AGENTPACK_KMS_SIGNING_KEY: '',
      AGENTPACK_ISSUER_URL: 'https://identity.example.test',
      // One line: a .env value holds no newline.
      AGENTPACK_SIGNING_KEY: JSON.stringify(JSON.parse(generateSigningKeysText())),
      AGENTPACK_SECRETS_KEK: SECRETS_KEK,
      AGENTPACK_CAPABILITY_KEYS: TEST_JWKS,
      FIRESTORE_EMULATOR_HOST: firestore.host,
    },
  });
  base = functions.functionUrl('identity');
  // The first request starts a worker: the instance's cold start (onInit builds the service).
  const health = await fetch(`${base}/healthz`);
  const text = await health.text();
  if (health.status !== 200) {
    throw new Error(`GET /healthz: ${health.status} ${text}\n${functions.output()}`);
  }
}, 240_000);

afterAll(async () => {
  await functions?.stop();
  await firestore?.stop();
}, 60_000);

interface Result {
  status: number;
  body: any;
  headers: Headers;
}

const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`POST ${path}: ${res.status}, not JSON: ${text}\n${functions.output()}`);
  }
  return { status: res.status, body: parsed, headers: res.headers } as Result;
};

const bridge = { 'x-agentpack-key': BRIDGE_KEY };
const device = (key: string) => ({ 'x-agentpack-device-key': key });
const expectError = (r: Result, status: number, code: string) => {
  expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status, code });
};

// State carried from one step of the flow to the next (the steps run in order).
let ownerKey: { key_id: string; device_key: string };
let peerKey: { key_id: string; device_key: string };
let delegationId: string;

describe('the identity function under the Functions emulator', () => {
  it('is served from functions/dist with the secret and params the emulator provided', async () => {
    const wellKnown = await fetch(`${base}/.well-known/agentpack-identity`);
    expect(wellKnown.status).toBe(200);
    const doc = (await wellKnown.json()) as any;
    expect(doc.issuer).toBe('agentpack-identity');
    // The pinned capability key, then the run-token key of AGENTPACK_SIGNING_KEY.
    expect(doc.jwks.keys.map((k: any) => k.alg)).toEqual(['EdDSA', 'ES256']);
    expect(doc.jwks.keys[0].kid).toBe(TEST_KID);
    const discovery = (await (
      await fetch(`${base}/.well-known/openid-configuration`)
    ).json()) as any;
    expect(discovery.issuer).toBe('https://identity.example.test');
    // The bridge key reached defineSecret: it authenticates, and nothing else does.
    expectError(await post('/agents/get', { agent_id: 'nobody-here' }, bridge), 404, 'not_found');
    const wrong = await post(
      '/agents/get',
      { agent_id: 'x' },
      { 'x-agentpack-key': 'w'.repeat(40) },
    );
    expectError(wrong, 401, 'unauthenticated');
    const none = await post('/agents/get', {});
    expectError(none, 401, 'unauthenticated');
    expect(none.headers.get('www-authenticate')).not.toBeNull();
  });

  it('creates agents and issues device keys', async () => {
    const created = await post(
      '/agents/create',
      { display_name: 'E2E owner', agent_id: 'e2e-owner' },
      bridge,
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      agent_id: 'e2e-owner',
      display_name: 'E2E owner',
      disabled: false,
    });
    expectError(
      await post('/agents/create', { display_name: 'again', agent_id: 'e2e-owner' }, bridge),
      409,
      'already_exists',
    );
    expect(
      (await post('/agents/create', { display_name: 'E2E peer', agent_id: 'e2e-peer' }, bridge))
        .status,
    ).toBe(201);

    const issued = await post('/device/issue', { agent_id: 'e2e-owner', label: 'ci' }, bridge);
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ agent_id: 'e2e-owner', label: 'ci' });
    expect(issued.body.key_id).toMatch(/^dk_/);
    expect(issued.body.device_key).toMatch(/^apdk_/);
    ownerKey = issued.body;
    const peer = await post('/device/issue', { agent_id: 'e2e-peer' }, bridge);
    expect(peer.status).toBe(201);
    peerKey = peer.body;

    // The agent comes from the key; a forged agent_id is dropped.
    const got = await post('/agents/get', { agent_id: 'e2e-peer' }, device(ownerKey.device_key));
    expect(got.status).toBe(200);
    expect(got.body.agent_id).toBe('e2e-owner');
  });

  it('puts and gets secrets with a device key', async () => {
    const dk = device(ownerKey.device_key);
    const first = await post('/secrets/put', { name: 'api_key', value: VALUE_1, cas: 0 }, dk);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ name: 'api_key', version: 1 });
    const second = await post('/secrets/put', { name: 'api_key', value: VALUE_2, cas: 1 }, dk);
    expect(second.body).toMatchObject({ name: 'api_key', version: 2 });
    const stale = await post('/secrets/put', { name: 'api_key', value: 'lost', cas: 1 }, dk);
    expectError(stale, 409, 'failed_precondition');
    expect(stale.body.error.details.current_version).toBe(2);
    expect((await post('/secrets/put', { name: 'other', value: OTHER_VALUE }, dk)).status).toBe(
      200,
    );

    const current = await post('/secrets/get', { name: 'api_key' }, dk);
    expect(current.status).toBe(200);
    expect(current.body).toMatchObject({ name: 'api_key', version: 2, value: VALUE_2 });
    const old = await post('/secrets/get', { name: 'api_key', version: 1 }, dk);
    expect(old.body).toMatchObject({ version: 1, value: VALUE_1 });
    // Another agent's key reads its own (empty) namespace, never the owner's.
    const peerRead = await post('/secrets/get', { name: 'api_key' }, device(peerKey.device_key));
    expectError(peerRead, 404, 'not_found');
  });

  it('delegates, and the delegate reads within the scope only', async () => {
    const grant = await post(
      '/delegate',
      { to_agent: 'e2e-peer', scope: ['secrets/get:api_key'], ttl_seconds: 300 },
      device(ownerKey.device_key),
    );
    expect(grant.status).toBe(201);
    expect(grant.body).toMatchObject({
      from_agent: 'e2e-owner',
      to_agent: 'e2e-peer',
      scope: ['secrets/get:api_key'],
    });
    delegationId = grant.body.delegation_id;
    const viaPeer = {
      ...device(peerKey.device_key),
      'x-agentpack-delegation': delegationId,
    };
    const read = await post('/secrets/get', { name: 'api_key' }, viaPeer);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ name: 'api_key', version: 2, value: VALUE_2 });
    expectError(await post('/secrets/get', { name: 'other' }, viaPeer), 403, 'permission_denied');
    expectError(
      await post('/secrets/put', { name: 'api_key', value: 'x' }, viaPeer),
      403,
      'permission_denied',
    );
  });

  it('accepts a capability token within its scope only', async () => {
    const token = mintTestToken({
      sub: 'e2e-owner',
      scope: ['secrets/get:api_key'],
      nowMs: Date.now(),
    });
    const read = await post('/secrets/get', { name: 'api_key', version: 1 }, bearer(token));
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ name: 'api_key', version: 1, value: VALUE_1 });
    expectError(
      await post('/secrets/get', { name: 'other' }, bearer(token)),
      403,
      'permission_denied',
    );
    expectError(
      await post('/secrets/put', { name: 'api_key', value: 'x' }, bearer(token)),
      403,
      'permission_denied',
    );
    const [header, claims, signature] = token.split('.');
    const swapped = signature!.at(-2) === 'A' ? 'B' : 'A';
    const flipped = `${signature!.slice(0, -2)}${swapped}${signature!.slice(-1)}`;
    expectError(
      await post('/secrets/get', { name: 'api_key' }, bearer(`${header}.${claims}.${flipped}`)),
      401,
      'unauthenticated',
    );
  });

  it('revokes the delegation and the device key, and refuses both at once', async () => {
    const viaPeer = { ...device(peerKey.device_key), 'x-agentpack-delegation': delegationId };
    const revoked = await post(
      '/delegate/revoke',
      { delegation_id: delegationId },
      device(ownerKey.device_key),
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.delegation_id).toBe(delegationId);
    expect(typeof revoked.body.revoked_at).toBe('string');
    expectError(await post('/secrets/get', { name: 'api_key' }, viaPeer), 403, 'permission_denied');
    const again = await post('/delegate/revoke', { delegation_id: delegationId }, bridge);
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);

    const keyRevoked = await post('/device/revoke', { key_id: ownerKey.key_id }, bridge);
    expect(keyRevoked.status).toBe(200);
    expect(keyRevoked.body).toMatchObject({ key_id: ownerKey.key_id, agent_id: 'e2e-owner' });
    const dk = device(ownerKey.device_key);
    expectError(await post('/secrets/get', { name: 'api_key' }, dk), 401, 'unauthenticated');
    expectError(await post('/agents/get', {}, dk), 401, 'unauthenticated');
    // The peer's own key is untouched.
    expect((await post('/agents/get', {}, device(peerKey.device_key))).status).toBe(200);
  });

  it('kept its state in the Firestore emulator, with no secret value or key in clear', () => {
    const dump = firestore.dump();
    expect(dump).toContain(`projects/${PROJECT}/`);
    expect(dump).toContain('e2e-owner');
    for (const needle of [VALUE_1, VALUE_2, OTHER_VALUE, ownerKey.device_key, peerKey.device_key])
      expect(dump.includes(needle), needle.slice(0, 12)).toBe(false);
  });

  it('printed no bridge key, KEK, device key or secret value in the emulator output', () => {
    const out = functions.output();
    expect(out).toContain('us-central1-identity');
    const needles = {
      'bridge key': BRIDGE_KEY,
      KEK: SECRETS_KEK,
      'owner device key': ownerKey.device_key,
      'peer device key': peerKey.device_key,
      'value 1': VALUE_1,
      'value 2': VALUE_2,
      'other value': OTHER_VALUE,
    };
    for (const [what, needle] of Object.entries(needles))
      expect(out.includes(needle), what).toBe(false);
  });

  it('shuts the emulators down cleanly', async () => {
    expect(await functions.stop()).toBe(0);
  }, 60_000);
});
