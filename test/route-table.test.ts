/**
 * The route table is the authorization policy. Every route declares who may call it; a caller
 * not declared is refused before the handler runs. Proved here over the HTTP core with spy
 * handlers, for every route and every credential kind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../functions/src/adapters/sqlite-store.js';
import { bridgeKeyring } from '../functions/src/auth/bridge-keys.js';
import { generateDeviceKey } from '@agentpack-identity/protocol';
import { createDigester } from '../functions/src/core/digest.js';
import { ERROR_STATUS } from '../functions/src/core/errors.js';
import { CONTRACT_ERROR_STATUS } from './helpers/contract-errors.js';
import { CALLER_KINDS, type CallerKind } from '../functions/src/core/principal.js';
import { createHandler } from '../functions/src/http/handler.js';
import type { HttpRequest } from '../functions/src/ports/http.js';
import type { Store } from '../functions/src/ports/store.js';
import type { Route } from '../functions/src/routes/route.js';
import { ROUTES } from '../functions/src/routes/table.js';
import { generateDeviceKeys, signRequest } from '@agentpack-identity/protocol';
import { parseScopeEntry } from '@agentpack-identity/protocol';
import { manualClock } from './helpers/clock.js';
import { capturingLogger } from './helpers/logs.js';
import { localKeyring } from '../functions/src/adapters/local-keyring.js';
import {
  generateSigningKeysText,
  localSigner,
  parseSigningKeys,
} from '../functions/src/adapters/local-signer.js';
import { loadPinnedKeys } from '../functions/src/tokens/pinned-keys.js';
import { createTokenVerifier } from '../functions/src/tokens/verify.js';
import { BRIDGE_KEY } from './helpers/service.js';
import { mintTestToken, TEST_JWKS } from './helpers/tokens.js';
import { tempDir } from './helpers/temp-dir.js';

const tmp = tempDir();
let store: Store;
const deviceKey = generateDeviceKey();
const digest = createDigester(Buffer.alloc(32, 9));

beforeAll(async () => {
  store = openSqliteStore({ file: `${tmp.dir}/t.sqlite` });
  await store.transact(async (tx) => {
    tx.set('agents', 'agent-a', {
      agent_id: 'agent-a',
      display_name: 'A',
      disabled: false,
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
    });
    tx.set('device_keys', digest('device_key', deviceKey), {
      key_id: 'dk_AAAAAAAAAAAAAAAA',
      agent_id: 'agent-a',
      label: null,
      created_at: '2026-01-01T00:00:00.000Z',
      expires_at: null,
      revoked_at: null,
    });
    tx.set('agents', 'agent-b', {
      agent_id: 'agent-b',
      display_name: 'B',
      disabled: false,
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
    });
    tx.set('delegations', DELEGATION_ID, {
      delegation_id: DELEGATION_ID,
      from_agent: 'agent-b',
      to_agent: 'agent-a',
      scope: ALL_SCOPE,
      created_at: '2026-01-01T00:00:00.000Z',
      expires_at: '2027-01-01T00:00:00.000Z',
      revoked_at: null,
    });
    tx.set('runs', RUN_ID, {
      run_id: RUN_ID,
      agent_id: 'agent-a',
      parent_run_id: null,
      root_run_id: RUN_ID,
      lineage: [RUN_ID],
      task: 'route table',
      scope: ALL_SCOPE,
      public_key: Buffer.from(runKey.publicKey).toString('base64url'),
      created_at: '2026-01-01T00:00:00.000Z',
      expires_at: '2027-01-01T00:00:00.000Z',
      ended: null,
      ended_at: null,
    });
  });
});
afterAll(async () => {
  await store.close();
  tmp.remove();
});

const DELEGATION_ID = 'dg_AAAAAAAAAAAAAAAAAAAAAA';
const RUN_ID = 'run_AAAAAAAAAAAAAAAAAAAAAA';
const runKey = generateDeviceKeys().signing;
/** Every RPC, so that scope never decides here: only the route policy does. */
const ALL_SCOPE = ROUTES.filter((r) => Array.isArray(r.policy))
  .map((r) => r.rpc)
  .filter((rpc) => parseScopeEntry(rpc) !== null);
const clock = manualClock();
const token = mintTestToken({ sub: 'agent-a', scope: ALL_SCOPE, nowMs: clock.now() });

const CREDENTIAL_HEADERS: Record<CallerKind, Record<string, string[]>> = {
  bridge: { 'x-agentpack-key': [BRIDGE_KEY] },
  device: { 'x-agentpack-device-key': [deviceKey] },
  token: { authorization: [`Bearer ${token}`] },
  delegated: { 'x-agentpack-device-key': [deviceKey], 'x-agentpack-delegation': [DELEGATION_ID] },
  // Signed per request in request() below.
  run: { 'x-agentpack-run': [RUN_ID] },
};

function spyRoutes(): { routes: Route[]; ran: string[] } {
  const ran: string[] = [];
  const routes = ROUTES.map((route) => ({
    ...route,
    run: async () => {
      ran.push(route.path);
      return {};
    },
  }));
  return { routes, ran };
}

/** A body each route's schema accepts, so only the policy decides. Default: `{}`. */
const VALID_BODIES: Record<string, unknown> = {
  '/agents/create': { display_name: 'x' },
  '/agents/disable': { agent_id: 'agent-a' },
  '/agents/enable': { agent_id: 'agent-a' },
  '/agents/retire': { agent_id: 'agent-a', confirm: 'agent-a' },
  '/delegate': { to_agent: 'agent-b', scope: ['agents/get'], ttl_seconds: 60 },
  '/delegate/revoke': { delegation_id: DELEGATION_ID },
  '/secrets/put': { name: 'n', value: 'v' },
  '/secrets/get': { name: 'n' },
  '/secrets/metadata': { name: 'n' },
  '/secrets/delete': { name: 'n' },
  '/secrets/undelete': { name: 'n' },
  '/secrets/destroy': { name: 'n', versions: [1] },
  '/secrets/resolve': { refs: ['agentpack.secret://agent-a/n'] },
  '/secrets/grant': { name: 'n', agents: ['agent-a'] },
  '/secrets/ungrant': { name: 'n', agents: ['agent-a'] },
  '/tokens/register': { jti: 'j', sub: 'agent-a', scope: ['agents/get'], iat: 1, exp: 2, kid: 'k' },
  '/settings/set': { key: 'secrets.max_versions', value: 5 },
  '/runs/spawn': { task: 't', scope: ['agents/get'], ttl_seconds: 60, public_key: 'k' },
  '/runs/revoke': { run_id: 'run_BBBBBBBBBBBBBBBBBBBBBB' },
  '/runs/token': { audience: 'https://example.com' },
  '/issuers/put': { issuer: 'https://issuer.example.com' },
  '/issuers/delete': { issuer: 'https://issuer.example.com' },
  '/roles/put': {
    role: 'ci-role',
    issuer: 'https://issuer.example.com',
    audiences: ['a'],
    bound_claims: { sub: 'x' },
    agent_id: 'agent-a',
    scope: ['agents/get'],
    ttl_seconds: 60,
  },
  '/roles/get': { role: 'ci-role' },
  '/roles/delete': { role: 'ci-role' },
  '/device/enrollments/create': { agent_id: 'agent-a' },
  '/attestations/verify': {
    key_id: 'dk_AAAAAAAAAAAAAAAA',
    job_id: 'j',
    input_sha256: 'a'.repeat(64),
    output_sha256: 'b'.repeat(64),
    rc: 0,
    signature: 'x',
  },
};

function request(route: Route, headers: Record<string, string[]>): HttpRequest {
  const body = Buffer.from(JSON.stringify(VALID_BODIES[route.path] ?? {}));
  const signature =
    headers['x-agentpack-run'] === undefined
      ? {}
      : Object.fromEntries(
          Object.entries(
            signRequest({
              method: route.method,
              path: route.path,
              body,
              signingSeed: runKey.privateKey,
              nowMs: clock.now(),
            }),
          ).map(([k, v]) => [k, [v]]),
        );
  return {
    method: route.method,
    path: route.path,
    headers: { 'content-type': ['application/json'], ...headers, ...signature },
    body,
  };
}

function deps(logger = capturingLogger().logger) {
  return {
    store,
    clock,
    digest,
    logger,
    bridgeKeys: bridgeKeyring([BRIDGE_KEY]),
    tokens: createTokenVerifier({
      keys: loadPinnedKeys(TEST_JWKS),
      issuer: 'agentpack-identity',
      audience: 'agentpack',
      maxTtlSeconds: 900,
    }),
    keyring: localKeyring(Buffer.alloc(32, 7)),
    issuer: 'agentpack-identity',
    audience: 'agentpack',
    jwks: { keys: [] },
    signer: localSigner(parseSigningKeys(generateSigningKeysText(), 'test')),
    issuerUrl: 'http://127.0.0.1:8787',
    issuerKeys: {
      keyFor: async () => {
        throw new Error('no issuer is fetched by the route-table tests');
      },
    },
  };
}

function handlerFor(routes: Route[]) {
  return createHandler(deps(), routes);
}

describe('route table', () => {
  it('gives every route a policy: public, or a non-empty list of known credential kinds', () => {
    expect(ROUTES.length).toBeGreaterThan(0);
    for (const route of ROUTES) {
      if (route.policy === 'public') {
        expect(route.method, route.path).toBe('GET');
        continue;
      }
      if (route.policy === 'enrollment-code') {
        expect(route.path).toBe('/device/enroll');
        continue;
      }
      if (route.policy === 'subject-token') {
        expect(route.path).toBe('/auth/exchange');
        continue;
      }
      expect(route.policy.length, route.path).toBeGreaterThan(0);
      for (const kind of route.policy) expect(CALLER_KINDS).toContain(kind);
    }
  });

  it('lists each path once and names every RPC after its path', () => {
    const paths = ROUTES.map((r) => r.path);
    expect(new Set(paths).size).toBe(paths.length);
    for (const route of ROUTES)
      expect(route.path.replace(/\/$/, '').endsWith(route.rpc)).toBe(true);
  });

  it('covers the routes of this version of the contract', () => {
    expect(ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(
      [
        'POST /agents/create',
        'POST /agents/get',
        'POST /agents/disable',
        'POST /agents/enable',
        'POST /agents/retire',
        'POST /device/issue',
        'POST /device/revoke',
        'POST /delegate',
        'POST /delegate/revoke',
        'POST /secrets/put',
        'POST /secrets/get',
        'POST /secrets/list',
        'POST /secrets/metadata',
        'POST /secrets/delete',
        'POST /secrets/undelete',
        'POST /secrets/destroy',
        'POST /secrets/resolve',
        'POST /secrets/grant',
        'POST /secrets/ungrant',
        'POST /tokens/register',
        'POST /device/enrollments/create',
        'POST /device/enroll',
        'POST /attestations/verify',
        'POST /runs/spawn',
        'POST /runs/complete',
        'POST /runs/revoke',
        'POST /runs/token',
        'POST /issuers/put',
        'POST /issuers/list',
        'POST /issuers/delete',
        'POST /roles/put',
        'POST /roles/get',
        'POST /roles/list',
        'POST /roles/delete',
        'POST /auth/exchange',
        'GET /.well-known/agentpack-agent-identity/',
        'GET /.well-known/jwks.json',
        'GET /.well-known/openid-configuration',
        'POST /settings/list',
        'POST /settings/set',
        'POST /agents/list',
        'POST /device/list',
        'POST /delegations/list',
        'POST /runs/list',
        'POST /audit/query',
        'GET /.well-known/agentpack-identity',
        'GET /healthz',
        'GET /openapi.json',
      ].sort(),
    );
  });

  for (const route of ROUTES.filter(
    (r) => r.policy !== 'public' && r.policy !== 'enrollment-code' && r.policy !== 'subject-token',
  )) {
    const accepted = route.policy as readonly CallerKind[];
    it(`${route.path}: refuses a missing credential (401) without running the handler`, async () => {
      const { routes, ran } = spyRoutes();
      const res = await handlerFor(routes)(request(route, {}));
      expect(res.status).toBe(401);
      expect(ran).toEqual([]);
    });
    for (const kind of CALLER_KINDS) {
      const allowed = accepted.includes(kind);
      it(`${route.path}: ${allowed ? 'runs' : 'refuses (403)'} with a ${kind} credential`, async () => {
        const { routes, ran } = spyRoutes();
        const res = await handlerFor(routes)(request(route, CREDENTIAL_HEADERS[kind]));
        if (allowed) {
          expect(res.status).toBe(route.status);
          expect(ran).toEqual([route.path]);
        } else {
          expect(res.status).toBe(403);
          expect(res.body).toMatchObject({ error: { code: 'permission_denied' } });
          expect(ran).toEqual([]);
        }
      });
    }
  }

  it('answers a generic 500 for an unexpected failure and logs the cause only', async () => {
    const capture = capturingLogger();
    const boom: Route = {
      ...ROUTES.find((r) => r.path === '/healthz')!,
      run: async () => {
        throw new Error('disk on fire: secret-value-123');
      },
    };
    const handler = createHandler(deps(capture.logger), [boom]);
    const res = await handler({
      method: 'GET',
      path: '/healthz',
      headers: {},
      body: Buffer.alloc(0),
    });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
    expect(JSON.stringify(res.body)).not.toContain('secret-value-123');
    expect(capture.lines.join('')).toContain('disk on fire');
  });
});

describe('error table', () => {
  it('maps the closed set of API codes to their statuses', () => {
    expect(ERROR_STATUS).toEqual(CONTRACT_ERROR_STATUS);
  });
});
