/**
 * The client against the real local service (SQLite, node:http) for every credential kind:
 * the bridge key, a bearer device key, an enrolled device (every request signed, reads sealed
 * and opened here, also delegated: v2 signatures), a run (signed by its own key) and a
 * capability token; errors with the API's code, status and details; run and capability tokens
 * verified offline from the service's JWKS, each refused as the other kind. Both crypto
 * backends run every signed and sealed flow, and are held to the protocol's own code byte for
 * byte. Every answer is checked against its response schema (`validateResponses`).
 */
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deviceFingerprint as protocolFingerprint,
  generateDeviceKeys as protocolKeys,
  requestSigningString,
  sealTo,
  signRequest,
} from '@agentpack-identity/protocol';
import { ROUTES as SERVER_ROUTES } from '../functions/src/routes/table.js';
import { takesNoCredential } from '../functions/src/routes/route.js';
import {
  AgentpackError,
  createClient,
  deviceFingerprint,
  enrollDevice,
  fetchJwks,
  generateDeviceKeys,
  ROUTES,
  TokenVerificationError,
  verifyCapabilityToken,
  verifyRunToken,
  type AgentpackClient,
  type ClientOptions,
  type Credential,
  type CryptoChoice,
  type RpcName,
} from '../packages/client/src/index.js';
import { portableBackend, signingString } from '../packages/client/src/crypto/portable.js';
import { nodeBackend } from '../packages/client/src/crypto/node.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { mintTestToken } from './helpers/tokens.js';

let svc: TestService;
let bridge: AgentpackClient;
let deviceKey: string;

const BACKENDS: CryptoChoice[] = ['node', 'portable'];

function clientOf(credential: Credential | undefined, extra: Partial<ClientOptions> = {}) {
  return createClient({
    url: svc.url,
    ...(credential === undefined ? {} : { credential }),
    validateResponses: true,
    retries: 0,
    ...extra,
  });
}

async function failure(promise: Promise<unknown>): Promise<AgentpackError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AgentpackError);
  return error as AgentpackError;
}

/** An enrollment code for `agent`, made by the bridge, and the device enrolled with it. */
async function enrolled(agent: string, crypto: CryptoChoice) {
  const { code } = await bridge.device.enrollments.create({ agent_id: agent });
  return enrollDevice({ url: svc.url, code, crypto, validateResponses: true });
}

beforeAll(async () => {
  svc = await startTestService();
  bridge = clientOf({ kind: 'bridge', key: BRIDGE_KEY });
  for (const id of ['agent-a', 'agent-b'])
    await bridge.agents.create({ display_name: id, agent_id: id });
  deviceKey = (await bridge.device.issue({ agent_id: 'agent-a' })).device_key;
});
afterAll(async () => {
  await svc.close();
});

/** The client's method for each RPC: a Record, so that an RPC without a method does not compile. */
const METHODS: Record<RpcName, (c: AgentpackClient) => unknown> = {
  'agents/create': (c) => c.agents.create,
  'agents/get': (c) => c.agents.get,
  'agents/list': (c) => c.agents.list,
  'agents/disable': (c) => c.agents.disable,
  'agents/enable': (c) => c.agents.enable,
  'agents/retire': (c) => c.agents.retire,
  'device/issue': (c) => c.device.issue,
  'device/revoke': (c) => c.device.revoke,
  'device/list': (c) => c.device.list,
  'device/enrollments/create': (c) => c.device.enrollments.create,
  'device/enroll': (c) => c.device.enroll,
  'attestations/verify': (c) => c.attestations.verify,
  delegate: (c) => c.delegate,
  'delegate/revoke': (c) => c.delegations.revoke,
  'delegations/list': (c) => c.delegations.list,
  'secrets/put': (c) => c.secrets.put,
  'secrets/get': (c) => c.secrets.get,
  'secrets/list': (c) => c.secrets.list,
  'secrets/metadata': (c) => c.secrets.metadata,
  'secrets/delete': (c) => c.secrets.delete,
  'secrets/undelete': (c) => c.secrets.undelete,
  'secrets/destroy': (c) => c.secrets.destroy,
  'secrets/resolve': (c) => c.secrets.resolve,
  'secrets/grant': (c) => c.secrets.grant,
  'secrets/ungrant': (c) => c.secrets.ungrant,
  'tokens/register': (c) => c.tokens.register,
  'settings/list': (c) => c.settings.list,
  'settings/set': (c) => c.settings.set,
  'runs/spawn': (c) => c.runs.spawn,
  'runs/complete': (c) => c.runs.complete,
  'runs/revoke': (c) => c.runs.revoke,
  'runs/token': (c) => c.runs.token,
  'runs/list': (c) => c.runs.list,
  'issuers/put': (c) => c.issuers.put,
  'issuers/list': (c) => c.issuers.list,
  'issuers/delete': (c) => c.issuers.delete,
  'roles/put': (c) => c.roles.put,
  'roles/get': (c) => c.roles.get,
  'roles/list': (c) => c.roles.list,
  'roles/delete': (c) => c.roles.delete,
  'auth/exchange': (c) => c.auth.exchange,
  'audit/query': (c) => c.audit.query,
  '.well-known/agentpack-identity': (c) => c.wellKnown.identity,
  '.well-known/jwks.json': (c) => c.wellKnown.jwks,
  '.well-known/openid-configuration': (c) => c.wellKnown.openidConfiguration,
  '.well-known/agentpack-agent-identity': (c) => c.wellKnown.run,
  healthz: (c) => c.health,
  'openapi.json': (c) => c.openapi,
};

describe('the route table', () => {
  it('every RPC has its method on the client', () => {
    for (const rpc of Object.keys(ROUTES) as RpcName[]) {
      expect(typeof METHODS[rpc](bridge), rpc).toBe('function');
    }
  });

  it("is the service's: every route, same method and path, the very same request and response schemas", () => {
    const names = SERVER_ROUTES.map((r) => r.rpc).sort();
    expect(Object.keys(ROUTES).sort()).toEqual(names);
    for (const route of SERVER_ROUTES) {
      const mine = ROUTES[route.rpc as keyof typeof ROUTES];
      expect(mine.method, route.rpc).toBe(route.method);
      expect(mine.path, route.rpc).toBe(route.path);
      expect(mine.input, route.rpc).toBe(route.input);
      expect(mine.output, route.rpc).toBe(route.output);
      // No credential goes to a route that takes none (public, the code, the subject token).
      expect(mine.auth === 'none', route.rpc).toBe(takesNoCredential(route.policy));
    }
  });
});

describe('crypto backends agree with the protocol', () => {
  it('the same signed string, the same signatures (v1 and v2), byte for byte', () => {
    const seed = protocolKeys().signing.privateKey;
    const body = new TextEncoder().encode('{"name":"openai_key"}');
    const nonce = 'AAECAwQFBgcICQoLDA0ODxAREhMU';
    for (const delegation of [undefined, 'dg_AAAAAAAAAAAAAAAAAAAAAA']) {
      const parts = {
        method: 'POST',
        path: '/secrets/get',
        timestamp: '1767225600',
        nonce,
        body,
        delegation,
      };
      expect(signingString(parts)).toBe(requestSigningString(parts));
      const expected = signRequest({
        method: 'POST',
        path: '/secrets/get',
        body,
        signingSeed: seed,
        nowMs: 1767225600_000,
        nonce,
        delegation,
      });
      for (const backend of [nodeBackend, portableBackend]) {
        expect(
          backend.signRequest({
            method: 'POST',
            path: '/secrets/get',
            body,
            seed,
            nowMs: 1767225600_000,
            nonce,
            delegation,
          }),
        ).toEqual(expected);
      }
    }
  });

  it('opens what the protocol seals, refuses a box for another key, and derives the same public keys', () => {
    const keys = protocolKeys();
    const other = protocolKeys();
    const sealed = sealTo(keys.sealing.publicKey, new TextEncoder().encode('sk-sealed ✓'));
    for (const backend of [nodeBackend, portableBackend]) {
      const opened = backend.openSealed(sealed, keys.sealing.publicKey, keys.sealing.privateKey);
      expect(new TextDecoder().decode(opened!)).toBe('sk-sealed ✓');
      expect(
        backend.openSealed(sealed, other.sealing.publicKey, other.sealing.privateKey),
      ).toBeNull();
      const tampered = new Uint8Array(sealed);
      tampered[40]! ^= 1;
      expect(
        backend.openSealed(tampered, keys.sealing.publicKey, keys.sealing.privateKey),
      ).toBeNull();
      expect(backend.x25519PublicKey(keys.sealing.privateKey)).toEqual(keys.sealing.publicKey);
      expect(backend.ed25519PublicKey(keys.signing.privateKey)).toEqual(keys.signing.publicKey);
    }
    expect(deviceFingerprint(keys.sealing.publicKey, keys.signing.publicKey)).toBe(
      protocolFingerprint(keys.sealing.publicKey, keys.signing.publicKey),
    );
  });
});

describe('the bridge key', () => {
  it('manages agents, keys and settings, provisions secrets, and never reads a value', async () => {
    expect(await bridge.agents.get({ agent_id: 'agent-a' })).toMatchObject({
      agent_id: 'agent-a',
      disabled: false,
    });
    const { agents } = await bridge.agents.list({ limit: 10 });
    expect(agents.map((a) => a.agent_id)).toEqual(['agent-a', 'agent-b']);
    const { settings } = await bridge.settings.list();
    expect(settings.map((s) => s.key)).toContain('secrets.max_versions');
    const put = await bridge.secrets.put({
      agent_id: 'agent-b',
      name: 'provisioned',
      value: 'by-ops',
    });
    expect(put).toMatchObject({ name: 'provisioned', version: 1 });
    const error = await failure(bridge.secrets.get('provisioned'));
    expect(error).toMatchObject({ code: 'permission_denied', status: 403, rpc: 'secrets/get' });
    expect(error.details).toMatchObject({ reason: 'write_only' });
    const dup = await failure(bridge.agents.create({ display_name: 'again', agent_id: 'agent-a' }));
    expect(dup).toMatchObject({ code: 'already_exists', status: 409 });
    expect(dup.message.length).toBeGreaterThan(0);
  });

  it('the public documents need no credential', async () => {
    const anonymous = clientOf(undefined);
    expect(await anonymous.health()).toEqual({ ok: true });
    const identity = await anonymous.wellKnown.identity();
    expect(identity.issuer).toBe('agentpack-identity');
    const oidc = await anonymous.wellKnown.openidConfiguration();
    expect(oidc.jwks_uri).toBe(`${svc.url}/.well-known/jwks.json`);
    expect((await anonymous.openapi()).openapi).toMatch(/^3\.1\./);
    const noCredential = await failure(anonymous.secrets.list());
    expect(noCredential).toMatchObject({ code: 'unauthenticated', status: 401 });
  });
});

describe('the operator plane and federation, through the client', () => {
  it('lists, revokes, grants, registers, audits, and trusts an issuer whose token a role exchanges for a run', async () => {
    await bridge.agents.create({ display_name: 'ops', agent_id: 'agent-ops' });
    expect((await bridge.agents.disable({ agent_id: 'agent-ops' })).disabled).toBe(true);
    expect((await bridge.agents.enable({ agent_id: 'agent-ops' })).disabled).toBe(false);
    const issued = await bridge.device.issue({ agent_id: 'agent-ops', label: 'ops laptop' });
    const { keys } = await bridge.device.list({ agent_id: 'agent-ops' });
    expect(keys.map((k) => k.key_id)).toContain(issued.key_id);
    const ops = clientOf({ kind: 'device', deviceKey: issued.device_key });
    const { run } = await ops.runs.start({
      task: 'ops run',
      scope: ['secrets/get'],
      ttl_seconds: 60,
    });
    expect((await ops.runs.list({ status: 'active' })).runs.map((r) => r.run_id)).toEqual([
      run.run_id,
    ]);
    expect((await bridge.runs.revoke({ run_id: run.run_id })).revoked).toEqual([run.run_id]);
    expect(await bridge.device.revoke({ key_id: issued.key_id })).toMatchObject({
      key_id: issued.key_id,
    });
    expect(await failure(ops.agents.get())).toMatchObject({ code: 'unauthenticated', status: 401 });

    await bridge.secrets.put({ agent_id: '_shared', name: 'shared_key', value: 'for everyone' });
    expect(await bridge.secrets.grant({ name: 'shared_key', agents: ['agent-a'] })).toEqual({
      name: 'shared_key',
      readers: ['agent-a'],
    });
    const a = clientOf({ kind: 'device', deviceKey });
    expect((await a.secrets.get('shared_key', { owner: '_shared' })).value).toBe('for everyone');
    await bridge.secrets.ungrant({ name: 'shared_key', agents: ['agent-a'] });
    expect(await failure(a.secrets.get('shared_key', { owner: '_shared' }))).toMatchObject({
      status: 404,
    });

    const now = Math.floor(Date.now() / 1000);
    const ledger = await bridge.tokens.register({
      jti: 'jti-client-test',
      sub: 'agent-a',
      scope: ['secrets/get'],
      iat: now,
      exp: now + 300,
      kid: 'test-key-1',
    });
    expect(ledger).toMatchObject({ jti: 'jti-client-test' });
    const verdict = await a.attestations.verify({
      key_id: issued.key_id,
      job_id: 'job-1',
      input_sha256: '0'.repeat(64),
      output_sha256: '1'.repeat(64),
      rc: 0,
      signature: 'AA',
    });
    expect(verdict).toEqual({ valid: false, reason: 'unknown_key' });

    // Federation: a pinned issuer, a role, and its subject token exchanged for a run.
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const issuer = 'https://kubernetes.default.svc.cluster.local';
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k8s-1', alg: 'EdDSA' };
    expect(await bridge.issuers.put({ issuer, jwks: { keys: [jwk] } })).toMatchObject({
      issuer,
      discovery: false,
    });
    expect((await bridge.issuers.list()).issuers.map((i) => i.issuer)).toEqual([issuer]);
    const subject = 'system:serviceaccount:ci:deployer';
    await bridge.roles.put({
      role: 'ci-deploy',
      issuer,
      audiences: ['agentpack-test'],
      bound_claims: { sub: subject },
      agent_id: 'agent-a',
      scope: ['secrets/get'],
      ttl_seconds: 300,
    });
    expect(await bridge.roles.get({ role: 'ci-deploy' })).toMatchObject({
      role: 'ci-deploy',
      issuer,
    });
    expect((await bridge.roles.list()).roles).toHaveLength(1);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'EdDSA', kid: 'k8s-1', typ: 'JWT' })}.${b64({ iss: issuer, sub: subject, aud: 'agentpack-test', iat: now, exp: now + 300 })}`;
    const subjectToken = `${input}.${cryptoSign(null, Buffer.from(input), privateKey).toString('base64url')}`;
    const anonymous = clientOf(undefined);
    const runKey = Buffer.from(protocolKeys().signing.publicKey).toString('base64url');
    const exchanged = await anonymous.auth.exchange({
      role: 'ci-deploy',
      subject_token: subjectToken,
      public_key: runKey,
    });
    expect(exchanged).toMatchObject({ agent_id: 'agent-a', scope: ['secrets/get'] });
    const refused = await failure(
      anonymous.auth.exchange({
        role: 'ci-deploy',
        subject_token: `${input}.AAAA`,
        public_key: runKey,
      }),
    );
    expect(refused).toMatchObject({
      code: 'unauthenticated',
      status: 401,
      details: { reason: 'bad_signature' },
    });
    expect(await bridge.roles.delete({ role: 'ci-deploy' })).toEqual({
      role: 'ci-deploy',
      deleted: true,
    });
    expect(await bridge.issuers.delete({ issuer })).toEqual({ issuer, deleted: true });

    const { events } = await bridge.audit.query({ action: 'auth.exchange' });
    expect(events.map((e) => e.actor.kind)).toEqual(['federated']);
    const retired = await bridge.agents.retire({ agent_id: 'agent-ops', confirm: 'agent-ops' });
    expect(retired).toMatchObject({ agent_id: 'agent-ops' });
    expect((await bridge.agents.get({ agent_id: 'agent-ops' })).retired_at).toBeDefined();
  });
});

describe('a device key', () => {
  it('puts, gets, lists, inspects, deletes, undeletes and destroys its secrets', async () => {
    const c = clientOf({ kind: 'device', deviceKey });
    expect(await c.secrets.put('openai_key', 'sk-1')).toMatchObject({
      name: 'openai_key',
      version: 1,
    });
    await c.secrets.put('openai_key', 'sk-2', { cas: 1 });
    expect(await c.secrets.get('openai_key')).toMatchObject({
      name: 'openai_key',
      version: 2,
      value: 'sk-2',
    });
    expect((await c.secrets.get('openai_key', { version: 1 })).value).toBe('sk-1');
    const { secrets } = await c.secrets.list();
    expect(secrets.map((s) => s.name)).toContain('openai_key');
    const meta = await c.secrets.metadata({ name: 'openai_key' });
    expect(meta.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(await c.secrets.delete({ name: 'openai_key' })).toEqual({
      name: 'openai_key',
      versions: [2],
    });
    expect(await failure(c.secrets.get('openai_key'))).toMatchObject({
      code: 'not_found',
      status: 404,
    });
    await c.secrets.undelete({ name: 'openai_key', versions: [2] });
    expect((await c.secrets.get('openai_key')).value).toBe('sk-2');
    await c.secrets.destroy({ name: 'openai_key', versions: [1] });
    expect(await failure(c.secrets.get('openai_key', { version: 1 }))).toMatchObject({
      code: 'not_found',
    });
    const resolved = await c.secrets.resolve({ refs: ['agentpack.secret://agent-a/openai_key'] });
    expect(resolved.values).toEqual([
      { ref: 'agentpack.secret://agent-a/openai_key', version: 2, source: 'agent', value: 'sk-2' },
    ]);
  });

  it('a cas conflict is failed_precondition with details.current_version', async () => {
    const c = clientOf({ kind: 'device', deviceKey });
    await c.secrets.put('cas_demo', 'v1');
    const error = await failure(c.secrets.put('cas_demo', 'v2', { cas: 0 }));
    expect(error).toMatchObject({ code: 'failed_precondition', status: 409, rpc: 'secrets/put' });
    expect(error.details).toMatchObject({ current_version: 1 });
  });

  it('an unknown device key is unauthenticated (401); seal: true without a sealing key is refused here', async () => {
    const unknown = clientOf({
      kind: 'device',
      deviceKey: 'apdk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    });
    expect(await failure(unknown.agents.get())).toMatchObject({
      code: 'unauthenticated',
      status: 401,
    });
    const c = clientOf({ kind: 'device', deviceKey });
    expect(await failure(c.secrets.get('openai_key', { seal: true }))).toMatchObject({
      code: 'invalid_argument',
      status: 0,
    });
  });
});

describe.each(BACKENDS)('an enrolled device (%s crypto)', (crypto) => {
  it('enrolls from a code, signs every request (required) and reads sealed values (required), opened here', async () => {
    await bridge.settings.set({ key: 'device.require_signed_requests', value: true });
    await bridge.settings.set({ key: 'secrets.require_sealed', value: true });
    try {
      const device = await enrolled('agent-a', crypto);
      expect(device.enrollment.agent_id).toBe('agent-a');
      const c = clientOf(device.credential, { crypto });
      await c.secrets.put('sealed_one', `sealed value ${crypto} ✓`);
      // Sealed by default for an enrolled device; opened with its sealing key.
      expect(await c.secrets.get('sealed_one')).toMatchObject({
        name: 'sealed_one',
        value: `sealed value ${crypto} ✓`,
      });
      const { values } = await c.secrets.resolve({
        refs: ['agentpack.secret://agent-a/sealed_one'],
      });
      expect(values[0]!.value).toBe(`sealed value ${crypto} ✓`);
      // In clear: refused while the service requires sealed reads.
      const clear = await failure(c.secrets.get('sealed_one', { seal: false }));
      expect(clear).toMatchObject({ code: 'permission_denied', status: 403 });
      // The same device key without its signature is useless.
      const unsigned = clientOf({ kind: 'device', deviceKey: device.credential.deviceKey });
      expect(await failure(unsigned.agents.get())).toMatchObject({
        code: 'unauthenticated',
        status: 401,
      });
      // Keys as base64url text work as bytes do.
      const text = clientOf(
        {
          ...device.credential,
          signingSeed: Buffer.from(device.keys.signing.privateKey).toString('base64url'),
          sealingKey: Buffer.from(device.keys.sealing.privateKey).toString('base64url'),
        },
        { crypto },
      );
      expect((await text.secrets.get('sealed_one')).value).toBe(`sealed value ${crypto} ✓`);
    } finally {
      await bridge.settings.set({ key: 'device.require_signed_requests', value: false });
      await bridge.settings.set({ key: 'secrets.require_sealed', value: false });
    }
  });

  it('acts for another agent under a delegation (v2 signatures), the answer sealed to its own key', async () => {
    const device = await enrolled('agent-a', crypto);
    const b = clientOf({
      kind: 'device',
      deviceKey: (await bridge.device.issue({ agent_id: 'agent-b' })).device_key,
    });
    await b.secrets.put('b_secret', `from b ${crypto}`);
    const grant = await b.delegate({
      to_agent: 'agent-a',
      scope: ['secrets/get:b_secret'],
      ttl_seconds: 300,
    });
    const a = clientOf(device.credential, { crypto }).withDelegation(grant.delegation_id);
    expect(await a.secrets.get('b_secret')).toMatchObject({ value: `from b ${crypto}` });
    expect(await failure(a.secrets.get('other'))).toMatchObject({
      code: 'permission_denied',
      status: 403,
    });
    const { delegations } = await b.delegations.list({ direction: 'from' });
    expect(delegations.map((d) => d.delegation_id)).toContain(grant.delegation_id);
    await b.delegations.revoke({ delegation_id: grant.delegation_id });
    expect(await failure(a.secrets.get('b_secret'))).toMatchObject({ status: 403 });
  });

  it('a sealed answer that does not open is bad_response, never a wrong value', async () => {
    const device = await enrolled('agent-a', crypto);
    const c = clientOf(device.credential, { crypto });
    await c.secrets.put('sealed_two', 'v');
    const stranger = generateDeviceKeys(crypto);
    const wrong = clientOf(
      {
        ...device.credential,
        sealingKey: (await stranger).sealing.privateKey,
        sealingPublicKey: undefined,
      },
      { crypto },
    );
    expect(await failure(wrong.secrets.get('sealed_two'))).toMatchObject({ code: 'bad_response' });
  });
});

describe.each(BACKENDS)('a run (%s crypto)', (crypto) => {
  it('is started with a key made here, acts within its scope signed by that key, gets tokens and completes', async () => {
    const device = clientOf({ kind: 'device', deviceKey }, { crypto });
    await device.secrets.put('run_secret', `for the run ${crypto}`);
    const {
      run,
      client: asRun,
      credential,
    } = await device.runs.start({
      task: 'summarise inbox',
      scope: ['secrets/get:run_secret', 'runs/spawn'],
      ttl_seconds: 300,
    });
    expect(credential).toMatchObject({ kind: 'run', runId: run.run_id });
    expect((await asRun.secrets.get('run_secret')).value).toBe(`for the run ${crypto}`);
    expect(await failure(asRun.secrets.get('openai_key'))).toMatchObject({
      code: 'permission_denied',
    });
    const child = await asRun.runs.start({
      task: 'child',
      scope: ['secrets/get:run_secret'],
      ttl_seconds: 60,
    });
    expect(child.run.parent_run_id).toBe(run.run_id);
    const other = await asRun.runs.token({ audience: 'https://downstream.example' });
    expect(other.token.split('.')).toHaveLength(3);
    const doc = await clientOf(undefined).wellKnown.run(run.run_id);
    expect(doc).toMatchObject({ run_id: run.run_id, status: 'active' });
    const done = await asRun.runs.complete();
    expect(done.ended.sort()).toEqual([run.run_id, child.run.run_id].sort());
    expect(await failure(asRun.secrets.get('run_secret'))).toMatchObject({
      code: 'unauthenticated',
      status: 401,
    });
    expect(await failure(child.client.agents.get())).toMatchObject({ status: 401 });
  });
});

describe('a capability token', () => {
  it('reads within its scope; a bad token is 401 with details.reason', async () => {
    const device = clientOf({ kind: 'device', deviceKey });
    await device.secrets.put('token_secret', 'via token');
    const token = mintTestToken({
      sub: 'agent-a',
      scope: ['secrets/get:token_secret', 'agents/get'],
      nowMs: Date.now(),
    });
    const c = clientOf({ kind: 'token', token });
    expect((await c.secrets.get('token_secret')).value).toBe('via token');
    expect(await c.agents.get()).toMatchObject({ agent_id: 'agent-a' });
    expect(await failure(c.secrets.list())).toMatchObject({
      code: 'permission_denied',
      status: 403,
    });
    const expired = clientOf({
      kind: 'token',
      token: mintTestToken({
        sub: 'agent-a',
        scope: ['agents/get'],
        nowMs: Date.now() - 3_600_000,
      }),
    });
    const error = await failure(expired.agents.get());
    expect(error).toMatchObject({ code: 'unauthenticated', status: 401 });
    expect(error.details).toMatchObject({ reason: 'expired' });
  });
});

describe.each(BACKENDS)("tokens verified offline from the service's JWKS (%s crypto)", (crypto) => {
  it('a capability token and a run token verify as their kind, and never as the other', async () => {
    const anonymous = clientOf(undefined);
    const identity = await anonymous.wellKnown.identity();
    const jwks = await fetchJwks(`${svc.url}/.well-known/jwks.json`);
    expect(jwks).toEqual(await anonymous.wellKnown.jwks());
    const now = Date.now();
    const cap = mintTestToken({ sub: 'agent-a', scope: ['secrets/get'], nowMs: now });
    const capOptions = {
      jwks: identity.jwks,
      issuer: identity.issuer,
      audience: identity.audience,
      crypto,
    };
    const claims = await verifyCapabilityToken(cap, capOptions);
    expect(claims).toMatchObject({
      sub: 'agent-a',
      scope: ['secrets/get'],
      iss: 'agentpack-identity',
    });

    const { run } = await clientOf({ kind: 'device', deviceKey }).runs.start({
      task: 'verify me',
      scope: ['secrets/get'],
      ttl_seconds: 120,
    });
    const runOptions = { jwks, issuer: svc.url, audience: svc.url, crypto };
    const runClaims = await verifyRunToken(run.token, runOptions);
    expect(runClaims).toMatchObject({ sub: 'agent-a', run_id: run.run_id, lineage: [run.run_id] });
    // The identity document's jwks holds both kinds of key: still each only as its own kind.
    await expect(
      verifyRunToken(run.token, { ...runOptions, jwks: identity.jwks }),
    ).resolves.toMatchObject({ run_id: run.run_id });

    const reason = (p: Promise<unknown>) =>
      p.then(
        () => 'accepted',
        (e: unknown) => (e instanceof TokenVerificationError ? e.reason : String(e)),
      );
    expect(
      await reason(verifyCapabilityToken(run.token, { ...capOptions, jwks: identity.jwks })),
    ).toBe('wrong_type');
    expect(await reason(verifyRunToken(cap, { ...runOptions, jwks: identity.jwks }))).toBe(
      'wrong_type',
    );
    expect(
      await reason(verifyCapabilityToken(cap, { ...capOptions, audience: 'someone-else' })),
    ).toBe('wrong_audience');
    expect(await reason(verifyCapabilityToken(cap, { ...capOptions, issuer: 'other' }))).toBe(
      'wrong_issuer',
    );
    expect(await reason(verifyCapabilityToken(cap, { ...capOptions, now: now + 3_600_000 }))).toBe(
      'expired',
    );
    expect(await reason(verifyCapabilityToken(cap, { ...capOptions, now: now - 3_600_000 }))).toBe(
      'not_yet_valid',
    );
    expect(await reason(verifyRunToken(run.token, { ...runOptions, jwks: { keys: [] } }))).toBe(
      'unknown_kid',
    );
    const [h, p, s] = run.token.split('.') as [string, string, string];
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    expect(await reason(verifyRunToken(`${h}.${p}.${flipped}`, runOptions))).toBe('bad_signature');
    const longLived = mintTestToken({
      sub: 'agent-a',
      scope: ['secrets/get'],
      nowMs: now,
      ttlSeconds: 3600,
    });
    expect(await reason(verifyCapabilityToken(longLived, capOptions))).toBe('lifetime_too_long');
    await expect(
      verifyCapabilityToken(longLived, { ...capOptions, maxLifetimeSeconds: 3600 }),
    ).resolves.toBeTruthy();
  });
});
