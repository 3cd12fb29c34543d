/**
 * The OpenAPI document: generated from the route table (functions/src/routes/openapi.ts),
 * served at `GET /openapi.json` and committed as `docs/openapi.json`. Checked here that it is a
 * valid OpenAPI 3.1 document for an independent parser, that it holds every route with its
 * method, credentials and body, that the committed copy is current, and — the point of it — that
 * the real answers of the running server, successes and errors, validate against it (ajv, JSON
 * Schema 2020-12), over a flow that calls every route.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate as validateOpenApi } from '@readme/openapi-parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  API_ERROR_CODES,
  AUDIT_ACTIONS,
  AUDIT_ACTOR_KINDS,
  generateDeviceKeys,
  signAttestation,
  signRequest,
} from '@agentpack-identity/protocol';
import { ERROR_STATUS } from '../functions/src/core/errors.js';
import type { AuditAction, AuditActor } from '../functions/src/ports/audit-event.js';
import { openApiDocument, openApiPath } from '../functions/src/routes/openapi.js';
import type { Route } from '../functions/src/routes/route.js';
import { ROUTES, routeIndex } from '../functions/src/routes/table.js';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { githubActionsClaims, startOidcIssuer, type OidcIssuer } from './helpers/oidc-issuer.js';
import { newRunKey, runClient, type Run, type RunClient } from './helpers/runs.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { startTestService, type ApiResult, type TestService } from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = JSON.parse(readFileSync(join(root, 'docs/openapi.json'), 'utf8'));

type Json = Record<string, any>;
let doc: Json;

beforeAll(() => {
  doc = openApiDocument(ROUTES);
});

// The protocol's lists are the service's: one added to either must be added to the other.
expectTypeOf<AuditAction>().toEqualTypeOf<(typeof AUDIT_ACTIONS)[number]>();
expectTypeOf<AuditActor['kind']>().toEqualTypeOf<(typeof AUDIT_ACTOR_KINDS)[number]>();

function operation(route: Route): Json {
  return doc['paths'][openApiPath(route)][route.method.toLowerCase()];
}

/** The response object a route documents for `status`, its `$ref` resolved. */
function responseOf(route: Route, status: number): Json | undefined {
  const found = operation(route)['responses'][String(status)];
  if (found === undefined || found['$ref'] === undefined) return found;
  return doc['components']['responses'][String(found['$ref']).split('/').pop()!];
}

/** JSON Schema 2020-12 validators of the document's schemas, their `$ref`s resolved. */
function validators(document: Json): (schema: unknown) => ValidateFunction {
  const base = 'urn:agentpack-identity:openapi';
  const relocate = (schema: unknown) =>
    JSON.parse(
      JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${base}#/$defs/`),
    ) as object;
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  ajv.addSchema({ $id: base, $defs: relocate(document['components']['schemas']) });
  const cache = new Map<string, ValidateFunction>();
  return (schema) => {
    const key = JSON.stringify(schema);
    let fn = cache.get(key);
    if (fn === undefined) {
      fn = ajv.compile(relocate(schema));
      cache.set(key, fn);
    }
    return fn;
  };
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document for an independent parser', async () => {
    expect(doc['openapi']).toBe('3.1.0');
    const result = await validateOpenApi(structuredClone(doc) as never);
    expect(result.valid, JSON.stringify(result)).toBe(true);
  });

  it('is the committed docs/openapi.json (else run `npm run openapi`)', () => {
    expect(committed, 'docs/openapi.json is not current: run `npm run openapi`').toEqual(doc);
  });

  it('gives every route an output schema, and errors are the one error table', () => {
    for (const route of ROUTES) {
      expect(route.output, route.path).toBeInstanceOf(z.ZodType);
    }
    expect([...API_ERROR_CODES].sort()).toEqual(Object.keys(ERROR_STATUS).sort());
  });

  /** The header sets each caller kind presents, independently of the generator's table. */
  const SIGNED = ['x-agentpack-nonce', 'x-agentpack-signature', 'x-agentpack-timestamp'];
  const HEADER_SETS: Record<string, string[][]> = {
    bridge: [['x-agentpack-key']],
    device: [['x-agentpack-device-key'], ['x-agentpack-device-key', ...SIGNED]],
    token: [['authorization']],
    run: [['x-agentpack-run', ...SIGNED]],
    delegated: [
      ['x-agentpack-delegation', 'x-agentpack-device-key'],
      ['x-agentpack-delegation', 'x-agentpack-device-key', ...SIGNED],
      ['authorization', 'x-agentpack-delegation'],
    ],
  };

  it('holds every route with its method, credentials and body', () => {
    const schemes = doc['components']['securitySchemes'] as Json;
    const headerOf = (name: string) => {
      const scheme = schemes[name];
      if (scheme.type === 'http') {
        expect(scheme).toMatchObject({ scheme: 'bearer', bearerFormat: 'JWT' });
        return 'authorization';
      }
      expect(scheme).toMatchObject({ type: 'apiKey', in: 'header' });
      return scheme.name as string;
    };
    const documented = Object.entries(doc['paths'] as Json).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(ROUTES.map((r) => `${r.method} ${openApiPath(r)}`).sort());
    expect(documented).toContain('GET /.well-known/agentpack-agent-identity/{run_id}');
    for (const route of ROUTES) {
      const op = operation(route);
      expect(op['x-agentpack-rpc']).toBe(route.rpc);
      const sets = (op['security'] as Json[])
        .map((req) => Object.keys(req).map(headerOf).sort().join(' '))
        .sort();
      const expected = Array.isArray(route.policy)
        ? route.policy.flatMap((kind) => HEADER_SETS[kind]!.map((s) => [...s].sort().join(' ')))
        : [];
      expect(sets, route.path).toEqual(expected.sort());
      // The success answer with the route's status, and the errors every route can give.
      const success = responseOf(route, route.status);
      expect(success?.['content']['application/json'].schema, route.path).toBeDefined();
      for (const status of [405, 500, 503])
        expect(responseOf(route, status), route.path).toBeDefined();
      if (Array.isArray(route.policy)) {
        for (const status of [400, 401, 403]) expect(responseOf(route, status)).toBeDefined();
      }
      if (route.method === 'GET') {
        expect(op['requestBody'], route.path).toBeUndefined();
        continue;
      }
      for (const status of [400, 413, 415]) expect(responseOf(route, status)).toBeDefined();
      // The body: zod's own JSON Schema of the input (an independent generator) names the
      // same fields, required alike, nothing else allowed.
      const body = op['requestBody'];
      expect(body.required, route.path).toBe(true);
      const schema = body.content['application/json'].schema as Json;
      const own = z.toJSONSchema(route.input, { io: 'input', unrepresentable: 'any' }) as Json;
      const fields = Object.keys(schema['properties'] ?? {}).filter(
        (f) => !(route.agentScoped && f === 'agent_id'),
      );
      expect(fields.sort(), route.path).toEqual(
        Object.keys(own['properties'] ?? {})
          .filter((f) => !(route.agentScoped && f === 'agent_id'))
          .sort(),
      );
      // The generator takes a field of any value (`z.unknown()`, `value` of /settings/set) for
      // optional, as it accepts undefined; zod, and so the server, needs it present.
      const anyValue = Object.entries(own['properties'] ?? {})
        .filter(([, s]) => Object.keys(s as object).length === 0)
        .map(([f]) => f);
      expect([...(schema['required'] ?? [])].sort(), route.path).toEqual(
        [...(own['required'] ?? [])].filter((f: string) => !anyValue.includes(f)).sort(),
      );
      expect(schema['additionalProperties'], route.path).toBe(false);
    }
  });

  it('describes answers strictly: no object allows a field the server never sends', () => {
    const loose: string[] = [];
    const walk = (node: unknown, where: string) => {
      if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${where}[${i}]`));
      if (typeof node !== 'object' || node === null) return;
      const schema = node as Json;
      if (schema['properties'] !== undefined && schema['additionalProperties'] !== false) {
        loose.push(where);
      }
      for (const [key, value] of Object.entries(schema)) walk(value, `${where}.${key}`);
    };
    walk(doc['components']['schemas'], 'schemas');
    // The OpenAPI document itself is the one open object (described by its top level only).
    expect(loose.sort()).toEqual([
      'schemas.OpenApiDocument',
      'schemas.OpenApiDocument.properties.info',
    ]);
  });
});

describe('real answers of the running server validate against the document', () => {
  let svc: TestService;
  let clock: ManualClock;
  let runs: RunClient;
  let issuer: OidcIssuer;
  let schemaOf: (schema: unknown) => ValidateFunction;
  const lookup = routeIndex(ROUTES);
  /** `<route path> <status>` of every answer checked. */
  const seen = new Set<string>();

  beforeAll(async () => {
    issuer = await startOidcIssuer({ algs: ['ES256'] });
    clock = manualClock(Date.now());
    svc = await startTestService({ clock, issuerCa: issuer.ca });
    runs = runClient(svc, clock);
    schemaOf = validators(doc);
  });
  afterAll(async () => {
    await svc.close();
    await issuer.close();
  });

  /** Checks one answer (and, on success, the body sent) against the document; records it. */
  function check(method: string, path: string, res: ApiResult, sent?: unknown): ApiResult {
    const found = lookup(path);
    expect(found, `${method} ${path} is not a route`).toBeDefined();
    const route = found!.route;
    const documented = responseOf(route, res.status);
    expect(
      documented,
      `${method} ${path} answered ${res.status}, which the document does not list: ${res.text}`,
    ).toBeDefined();
    const validateBody = schemaOf(documented!['content']['application/json'].schema);
    expect(
      validateBody(res.body) ? [] : validateBody.errors,
      `${method} ${path} ${res.status}: ${res.text}`,
    ).toEqual([]);
    for (const [name, header] of Object.entries((documented!['headers'] ?? {}) as Json)) {
      const value = res.headers.get(name);
      expect(value, `${path} ${res.status}: header ${name}`).not.toBeNull();
      if (header.schema.enum !== undefined) expect(header.schema.enum).toContain(value);
    }
    if (res.status < 300 && sent !== undefined) {
      const validateRequest = schemaOf(
        operation(route)['requestBody'].content['application/json'].schema,
      );
      expect(validateRequest(sent) ? [] : validateRequest.errors, `${path} request`).toEqual([]);
    }
    seen.add(`${route.path} ${res.status}`);
    return res;
  }

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    check('POST', path, await svc.post(path, body, headers), body);
  const get = async (path: string) =>
    check('GET', path, await svc.request(path, { method: 'GET' }));
  const asRun = async (run: Run, path: string, body: object) =>
    check('POST', path, await runs.asRun(run, path, body), body);
  /** A request signed by an enrolled device's key, as the CLI sends it. */
  const signedPost = async (
    path: string,
    body: object,
    device: { seed: Uint8Array; key: string },
  ) => {
    const raw = JSON.stringify(body);
    const headers = signRequest({
      method: 'POST',
      path,
      body: raw,
      signingSeed: device.seed,
      nowMs: clock.now(),
    });
    const res = await svc.post(path, raw, { ...svc.device(device.key), ...headers });
    return check('POST', path, res, body);
  };

  let alphaKey = '';
  let betaKey = '';
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
  const enrolledKeys = generateDeviceKeys();
  let enrolled: { seed: Uint8Array; key: string; key_id: string } = {
    seed: new Uint8Array(),
    key: '',
    key_id: '',
  };

  it('public documents', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/.well-known/agentpack-identity')).status).toBe(200);
    expect((await get('/.well-known/jwks.json')).status).toBe(200);
    expect((await get('/.well-known/openid-configuration')).status).toBe(200);
    const served = await get('/openapi.json');
    expect(served.status).toBe(200);
    expect(served.headers.get('cache-control')).toBe('public, max-age=300');
    expect(served.body).toEqual(committed);
    expect((await post('/healthz', {})).status).toBe(405);
  });

  it('agents and device keys', async () => {
    const create = (body: object) => post('/agents/create', body, svc.bridge);
    expect((await create({ display_name: 'Alpha', agent_id: 'agent-alpha' })).status).toBe(201);
    expect((await create({ display_name: 'Beta', agent_id: 'agent-beta' })).status).toBe(201);
    expect((await create({ display_name: 'Generated id' })).status).toBe(201);
    expect((await create({ display_name: 'Alpha', agent_id: 'agent-alpha' })).status).toBe(409);
    expect((await create({ display_name: 'x', color: 'red' })).status).toBe(400);
    expect((await post('/agents/create', { display_name: 'x' })).status).toBe(401);
    const issue = await post(
      '/device/issue',
      { agent_id: 'agent-alpha', label: 'laptop' },
      svc.bridge,
    );
    expect(issue.status).toBe(201);
    alphaKey = issue.body.device_key;
    betaKey = (await post('/device/issue', { agent_id: 'agent-beta' }, svc.bridge)).body.device_key;
    expect((await post('/device/issue', { agent_id: 'agent-nobody' }, svc.bridge)).status).toBe(
      404,
    );
    const spare = await post('/device/issue', { ttl_seconds: 3600 }, svc.device(alphaKey));
    expect(spare.status).toBe(201);
    expect(spare.body.expires_at).not.toBeNull();
    const revoke = { key_id: spare.body.key_id };
    expect((await post('/device/revoke', revoke, svc.device(alphaKey))).status).toBe(200);
    expect((await post('/device/revoke', revoke, svc.bridge)).status).toBe(200);
    expect(
      (await post('/device/revoke', { key_id: 'dk_AAAAAAAAAAAAAAAA' }, svc.bridge)).status,
    ).toBe(404);
    expect((await post('/agents/get', {}, svc.device(alphaKey))).status).toBe(200);
    expect((await post('/agents/get', { agent_id: 'agent-beta' }, svc.bridge)).status).toBe(200);
    expect((await post('/agents/get', { agent_id: 'agent-nobody' }, svc.bridge)).status).toBe(404);
    expect((await post('/agents/get', {}, svc.device(`${alphaKey}x`))).status).toBe(401);
    expect((await post('/agents/get', {}, { ...svc.bridge, ...svc.device(alphaKey) })).status).toBe(
      400,
    );
    expect(
      (await post('/agents/disable', { agent_id: 'agent-alpha' }, svc.device(alphaKey))).status,
    ).toBe(403);
    // The body's own errors.
    const request = async (init: RequestInit) =>
      check(init.method ?? 'POST', '/agents/get', await svc.request('/agents/get', init));
    expect((await request({ method: 'GET' })).status).toBe(405);
    expect(
      (
        await request({
          method: 'POST',
          headers: { 'content-type': 'text/plain', ...svc.bridge },
          body: '{}',
        })
      ).status,
    ).toBe(415);
    expect(
      (
        await request({
          method: 'POST',
          headers: { 'content-type': 'application/json', ...svc.bridge },
          body: JSON.stringify({ agent_id: 'x'.repeat(70 * 1024) }),
        })
      ).status,
    ).toBe(413);
    expect(
      (
        await request({
          method: 'POST',
          headers: { 'content-type': 'application/json', ...svc.bridge },
          body: '{"agent_id":',
        })
      ).status,
    ).toBe(400);
  });

  it('secrets, shared secrets and references', async () => {
    const alpha = svc.device(alphaKey);
    const put = (body: object, headers = alpha) => post('/secrets/put', body, headers);
    expect((await put({ name: 'openai_key', value: 'sk-1' })).status).toBe(200);
    expect((await put({ name: 'openai_key', value: 'sk-2', cas: 1 })).status).toBe(200);
    const stale = await put({ name: 'openai_key', value: 'sk-3', cas: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.details.current_version).toBe(2);
    expect(
      (await put({ agent_id: 'agent-alpha', name: 'from_ops', value: 'v' }, svc.bridge)).status,
    ).toBe(200);
    expect((await post('/secrets/get', { name: 'openai_key' }, alpha)).status).toBe(200);
    expect((await post('/secrets/get', { name: 'openai_key', version: 1 }, alpha)).status).toBe(
      200,
    );
    expect((await post('/secrets/get', { name: 'nothing_here' }, alpha)).status).toBe(404);
    const writeOnly = await post('/secrets/get', { name: 'openai_key' }, svc.bridge);
    expect(writeOnly.status).toBe(403);
    expect(writeOnly.body.error.details.reason).toBe('write_only');
    expect((await post('/secrets/list', {}, alpha)).status).toBe(200);
    expect((await post('/secrets/list', { agent_id: 'agent-alpha' }, svc.bridge)).status).toBe(200);
    expect((await post('/secrets/list', { agent_id: 'agent-nobody' }, svc.bridge)).status).toBe(
      404,
    );
    expect((await post('/secrets/metadata', { name: 'openai_key' }, alpha)).status).toBe(200);
    expect((await post('/secrets/metadata', { name: 'nothing_here' }, alpha)).status).toBe(404);
    expect((await post('/secrets/delete', { name: 'openai_key' }, alpha)).status).toBe(200);
    const deleted = await post('/secrets/get', { name: 'openai_key' }, alpha);
    expect(deleted.body.error.details.reason).toBe('deleted');
    expect((await post('/secrets/undelete', { name: 'openai_key' }, alpha)).status).toBe(200);
    expect(
      (await post('/secrets/destroy', { name: 'openai_key', versions: [1] }, alpha)).status,
    ).toBe(200);
    expect(
      (await post('/secrets/undelete', { name: 'openai_key', versions: [1] }, alpha)).status,
    ).toBe(409);
    expect(
      (await post('/secrets/destroy', { name: 'openai_key', versions: [9] }, alpha)).status,
    ).toBe(404);
    expect((await post('/secrets/delete', { name: 'nothing_here' }, alpha)).status).toBe(404);
    const refs = [
      'agentpack.secret://agent-alpha/openai_key',
      'agentpack.secret://agent-alpha/from_ops#1',
    ];
    expect((await post('/secrets/resolve', { refs }, alpha)).status).toBe(200);
    const missing = await post(
      '/secrets/resolve',
      { refs: ['agentpack.secret://agent-alpha/nope'] },
      alpha,
    );
    expect(missing.status).toBe(404);
    expect((await post('/secrets/resolve', { refs: ['not a ref'] }, alpha)).status).toBe(400);
    // Shared secrets, provisioned by the bridge and granted.
    expect(
      (await put({ agent_id: '_shared', name: 'team_key', value: 't-1' }, svc.bridge)).status,
    ).toBe(200);
    const grant = { name: 'team_key', agents: ['agent-alpha'] };
    expect((await post('/secrets/grant', grant, svc.bridge)).status).toBe(200);
    expect((await post('/secrets/grant', { ...grant, name: 'no_such' }, svc.bridge)).status).toBe(
      404,
    );
    const shared = await post(
      '/secrets/metadata',
      { agent_id: '_shared', name: 'team_key' },
      svc.bridge,
    );
    expect(shared.body.readers).toEqual(['agent-alpha']);
    const read = await post('/secrets/get', { name: 'team_key', owner: '_shared' }, alpha);
    expect(read.body.owner).toBe('_shared');
    const fallback = await post(
      '/secrets/resolve',
      { refs: ['agentpack.secret://agent-alpha/team_key'], fallback: 'shared' },
      alpha,
    );
    expect(fallback.body.values[0].source).toBe('shared');
    expect((await post('/secrets/ungrant', grant, svc.bridge)).status).toBe(200);
    expect((await post('/secrets/ungrant', { ...grant, name: 'no_such' }, svc.bridge)).status).toBe(
      404,
    );
  });

  it('enrolled devices, sealed answers and attestations', async () => {
    const created = await post(
      '/device/enrollments/create',
      { agent_id: 'agent-alpha', label: 'host' },
      svc.bridge,
    );
    expect(created.status).toBe(201);
    expect(
      (await post('/device/enrollments/create', { agent_id: 'agent-nobody' }, svc.bridge)).status,
    ).toBe(404);
    const body = {
      code: created.body.code,
      sealing_public_key: b64(enrolledKeys.sealing.publicKey),
      signing_public_key: b64(enrolledKeys.signing.publicKey),
    };
    const enroll = await post('/device/enroll', body);
    expect(enroll.status).toBe(201);
    enrolled = {
      seed: enrolledKeys.signing.privateKey,
      key: openEnrolledKey(enroll.body, enrolledKeys.sealing),
      key_id: enroll.body.key_id,
    };
    expect((await post('/device/enroll', body)).status).toBe(401);
    const other = generateDeviceKeys();
    const pinned = await post(
      '/device/enrollments/create',
      { agent_id: 'agent-alpha', expected_fingerprint: enroll.body.fingerprint },
      svc.bridge,
    );
    const mismatch = await post('/device/enroll', {
      code: pinned.body.code,
      sealing_public_key: b64(other.sealing.publicKey),
      signing_public_key: b64(other.signing.publicKey),
    });
    expect(mismatch.status).toBe(409);
    expect(mismatch.body.error.details.reason).toBe('fingerprint_mismatch');
    const sealed = await signedPost('/secrets/get', { name: 'openai_key', seal: true }, enrolled);
    expect(sealed.status).toBe(200);
    expect(sealed.body.sealed).toBeDefined();
    const refs = { refs: ['agentpack.secret://agent-alpha/openai_key'], seal: true };
    expect((await signedPost('/secrets/resolve', refs, enrolled)).status).toBe(200);
    expect(
      (
        await signedPost(
          '/secrets/put',
          { name: 'broker_key', value: 'b', brokered: true },
          enrolled,
        )
      ).status,
    ).toBe(200);
    const downgrade = await signedPost('/device/issue', {}, enrolled);
    expect(downgrade.status).toBe(403);
    expect(downgrade.body.error.details.reason).toBe('enrolled_device');
    expect(
      (await post('/device/list', { agent_id: 'agent-alpha', include_revoked: true }, svc.bridge))
        .status,
    ).toBe(200);
    expect((await post('/device/list', {}, svc.device(alphaKey))).status).toBe(200);
    expect((await post('/device/list', { agent_id: 'agent-nobody' }, svc.bridge)).status).toBe(404);
    // Attestations: valid, refused, and unknown to another agent.
    const fields = {
      key_id: enrolled.key_id,
      job_id: 'job-1',
      input_sha256: 'a'.repeat(64),
      output_sha256: 'b'.repeat(64),
      rc: 0,
    };
    const signature = signAttestation(fields, enrolled.seed);
    const valid = await post('/attestations/verify', { ...fields, signature }, svc.bridge);
    expect(valid.body).toMatchObject({ valid: true });
    const bad = await post('/attestations/verify', { ...fields, rc: 1, signature }, svc.bridge);
    expect(bad.body).toMatchObject({ valid: false, reason: 'bad_signature' });
    const foreign = await post(
      '/attestations/verify',
      { ...fields, signature },
      svc.device(betaKey),
    );
    expect(foreign.body).toEqual({ valid: false, reason: 'unknown_key' });
  });

  it('delegations and capability tokens', async () => {
    const alpha = svc.device(alphaKey);
    const grant = { to_agent: 'agent-beta', scope: ['secrets/get:openai_key'], ttl_seconds: 600 };
    const made = await post('/delegate', grant, alpha);
    expect(made.status).toBe(201);
    expect((await post('/delegate', { ...grant, to_agent: 'agent-nobody' }, alpha)).status).toBe(
      404,
    );
    const delegated = { ...svc.device(betaKey), 'x-agentpack-delegation': made.body.delegation_id };
    expect((await post('/secrets/get', { name: 'openai_key' }, delegated)).status).toBe(200);
    expect((await post('/secrets/get', { name: 'from_ops' }, delegated)).status).toBe(403);
    expect((await post('/delegations/list', {}, alpha)).status).toBe(200);
    expect(
      (
        await post(
          '/delegations/list',
          { agent_id: 'agent-beta', include_inactive: true },
          svc.bridge,
        )
      ).status,
    ).toBe(200);
    expect((await post('/delegations/list', { agent_id: 'agent-nobody' }, svc.bridge)).status).toBe(
      404,
    );
    const revoke = { delegation_id: made.body.delegation_id };
    expect((await post('/delegate/revoke', revoke, alpha)).status).toBe(200);
    expect(
      (await post('/delegate/revoke', { delegation_id: 'dg_AAAAAAAAAAAAAAAAAAAAAA' }, alpha))
        .status,
    ).toBe(404);
    expect((await post('/secrets/get', { name: 'openai_key' }, delegated)).status).toBe(403);
    // Capability tokens: verified offline, within their scope, registered in the ledger.
    const scope = ['agents/get', 'secrets/get:from_ops', 'delegate'];
    const token = mintTestToken({ sub: 'agent-alpha', scope, nowMs: clock.now() });
    expect((await post('/agents/get', {}, bearer(token))).status).toBe(200);
    expect((await post('/secrets/get', { name: 'from_ops' }, bearer(token))).status).toBe(200);
    expect((await post('/secrets/get', { name: 'openai_key' }, bearer(token))).status).toBe(403);
    const expired = mintTestToken({ sub: 'agent-alpha', scope, nowMs: clock.now() - 3600_000 });
    const refused = await post('/agents/get', {}, bearer(expired));
    expect(refused.status).toBe(401);
    expect(refused.body.error.details.reason).toBe('expired');
    const [, claims] = token.split('.');
    const { jti, iat, exp } = JSON.parse(Buffer.from(claims!, 'base64url').toString());
    const entry = { jti, sub: 'agent-alpha', scope, iat, exp, kid: 'test-key-1' };
    expect((await post('/tokens/register', entry, svc.bridge)).status).toBe(201);
    expect((await post('/tokens/register', entry, svc.bridge)).status).toBe(409);
  });

  it('runs, run tokens and run identities', async () => {
    const alpha = svc.device(alphaKey);
    const key = newRunKey();
    const spawn = {
      task: 'summarise inbox',
      scope: ['secrets/get:from_ops', 'runs/spawn', 'runs/list'],
      ttl_seconds: 300,
      public_key: key.pub,
    };
    const spawned = await post('/runs/spawn', spawn, alpha);
    expect(spawned.status).toBe(201);
    const root: Run = { run_id: spawned.body.run_id, seed: key.seed, body: spawned.body };
    expect((await post('/runs/spawn', spawn, alpha)).status).toBe(409);
    const childKey = newRunKey();
    const child = await asRun(root, '/runs/spawn', {
      ...spawn,
      public_key: childKey.pub,
      scope: ['secrets/get:from_ops'],
    });
    expect(child.status).toBe(201);
    const childRun: Run = { run_id: child.body.run_id, seed: childKey.seed, body: child.body };
    expect((await asRun(childRun, '/secrets/get', { name: 'from_ops' })).status).toBe(200);
    expect(
      (await asRun(childRun, '/runs/token', { audience: 'https://api.example.com' })).status,
    ).toBe(201);
    expect((await asRun(root, '/runs/list', {})).status).toBe(200);
    expect((await post('/runs/list', { status: 'all' }, alpha)).status).toBe(200);
    expect((await post('/runs/list', { agent_id: 'agent-nobody' }, svc.bridge)).status).toBe(404);
    expect((await get(`/.well-known/agentpack-agent-identity/${root.run_id}`)).status).toBe(200);
    expect(
      (await get('/.well-known/agentpack-agent-identity/run_AAAAAAAAAAAAAAAAAAAAAA')).status,
    ).toBe(404);
    expect((await asRun(childRun, '/runs/complete', {})).status).toBe(200);
    expect((await asRun(childRun, '/runs/token', { audience: 'x' })).status).toBe(401);
    const completed = await get(`/.well-known/agentpack-agent-identity/${childRun.run_id}`);
    expect(completed.body.status).toBe('completed');
    expect((await post('/runs/revoke', { run_id: root.run_id }, alpha)).status).toBe(200);
    expect(
      (await post('/runs/revoke', { run_id: 'run_AAAAAAAAAAAAAAAAAAAAAA' }, alpha)).status,
    ).toBe(404);
    // Revoking an ancestor wins over the child's own completion.
    const ended = await get(`/.well-known/agentpack-agent-identity/${childRun.run_id}`);
    expect(ended.body.status).toBe('revoked');
  });

  it('workload federation: issuers, roles and the exchange', async () => {
    const aud = 'https://github.com/acme';
    expect((await post('/issuers/put', { issuer: issuer.issuer }, svc.bridge)).status).toBe(200);
    const pinned = {
      issuer: 'https://pinned.example.com',
      jwks: { keys: [issuer.keys[0]!.publicJwk] },
    };
    expect((await post('/issuers/put', pinned, svc.bridge)).status).toBe(200);
    expect((await post('/issuers/list', { limit: 1 }, svc.bridge)).status).toBe(200);
    const role = {
      role: 'ci-deploy',
      issuer: issuer.issuer,
      audiences: [aud],
      bound_claims: { sub: 'repo:acme/*:ref:refs/heads/main', repository_owner: ['acme'] },
      agent_id: 'agent-alpha',
      scope: ['secrets/get:from_ops'],
      ttl_seconds: 600,
    };
    expect((await post('/roles/put', role, svc.bridge)).status).toBe(200);
    expect(
      (
        await post(
          '/roles/put',
          { ...role, role: 'other', issuer: 'https://untrusted.example.com' },
          svc.bridge,
        )
      ).status,
    ).toBe(409);
    expect((await post('/roles/get', { role: 'ci-deploy' }, svc.bridge)).status).toBe(200);
    expect((await post('/roles/get', { role: 'no-such-role' }, svc.bridge)).status).toBe(404);
    expect((await post('/roles/list', {}, svc.bridge)).status).toBe(200);
    const subject = await issuer.mint(
      githubActionsClaims({ repository: 'acme/app', audience: aud }),
      { alg: 'ES256' },
    );
    const exchange = (body: object) =>
      post('/auth/exchange', {
        role: 'ci-deploy',
        subject_token: subject,
        public_key: newRunKey().pub,
        ...body,
      });
    expect((await exchange({ task: 'deploy' })).status).toBe(201);
    expect(
      (
        await exchange({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        })
      ).status,
    ).toBe(201);
    const unknown = await exchange({ role: 'no-such-role' });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.details.reason).toBe('unknown_role');
    expect((await post('/issuers/delete', { issuer: issuer.issuer }, svc.bridge)).status).toBe(409);
    expect((await post('/roles/delete', { role: 'ci-deploy' }, svc.bridge)).status).toBe(200);
    expect((await post('/roles/delete', { role: 'ci-deploy' }, svc.bridge)).status).toBe(404);
    expect((await post('/issuers/delete', { issuer: issuer.issuer }, svc.bridge)).status).toBe(200);
    expect((await post('/issuers/delete', { issuer: issuer.issuer }, svc.bridge)).status).toBe(404);
  });

  it('settings, lists and the audit', async () => {
    expect((await post('/settings/list', {}, svc.bridge)).status).toBe(200);
    expect(
      (await post('/settings/set', { key: 'secrets.max_versions', value: 5 }, svc.bridge)).status,
    ).toBe(200);
    expect(
      (await post('/settings/set', { key: 'secrets.require_sealed', value: false }, svc.bridge))
        .status,
    ).toBe(200);
    expect((await post('/settings/set', { key: 'no.such', value: 1 }, svc.bridge)).status).toBe(
      400,
    );
    expect((await post('/settings/list', {}, svc.device(alphaKey))).status).toBe(403);
    const first = await post('/agents/list', { limit: 1 }, svc.bridge);
    expect(first.body.next_cursor).not.toBeNull();
    expect(
      (await post('/agents/list', { limit: 1, cursor: first.body.next_cursor }, svc.bridge)).status,
    ).toBe(200);
    expect((await post('/agents/list', { disabled: false }, svc.bridge)).status).toBe(200);
    expect((await post('/agents/list', { cursor: 'not-a-cursor' }, svc.bridge)).status).toBe(400);
    // Every event of the flow so far, page by page: each one validates.
    let cursor: string | null = null;
    let events = 0;
    do {
      const page: ApiResult = await post(
        '/audit/query',
        { limit: 200, ...(cursor === null ? {} : { cursor }) },
        svc.bridge,
      );
      expect(page.status).toBe(200);
      events += page.body.events.length;
      cursor = page.body.next_cursor;
    } while (cursor !== null);
    expect(events).toBeGreaterThan(20);
    expect(
      (await post('/audit/query', { agent_id: 'agent-alpha', category: 'secrets' }, svc.bridge))
        .status,
    ).toBe(200);
    expect((await post('/audit/query', { since: 'yesterday' }, svc.bridge)).status).toBe(400);
  });

  it('disable, enable and retire', async () => {
    expect((await post('/agents/disable', { agent_id: 'agent-beta' }, svc.bridge)).status).toBe(
      200,
    );
    expect((await post('/agents/get', {}, svc.device(betaKey))).status).toBe(403);
    expect((await post('/agents/enable', { agent_id: 'agent-beta' }, svc.bridge)).status).toBe(200);
    expect((await post('/agents/disable', { agent_id: 'agent-nobody' }, svc.bridge)).status).toBe(
      404,
    );
    await post('/secrets/put', { name: 'doomed', value: 'v' }, svc.device(betaKey));
    const retire = { agent_id: 'agent-beta', confirm: 'agent-beta' };
    expect((await post('/agents/retire', retire, svc.bridge)).status).toBe(200);
    expect((await post('/agents/retire', retire, svc.bridge)).status).toBe(200);
    expect(
      (await post('/agents/get', { agent_id: 'agent-beta' }, svc.bridge)).body.retired_at,
    ).toBeDefined();
    expect((await post('/agents/enable', { agent_id: 'agent-beta' }, svc.bridge)).status).toBe(409);
    expect(
      (
        await post(
          '/agents/retire',
          { agent_id: 'agent-nobody', confirm: 'agent-nobody' },
          svc.bridge,
        )
      ).status,
    ).toBe(404);
    expect(
      (await post('/agents/retire', { agent_id: 'agent-alpha', confirm: 'agent-beta' }, svc.bridge))
        .status,
    ).toBe(400);
  });

  it('answered every route with success, and the errors of the contract, as the document says', () => {
    const missing = ROUTES.filter((route) => !seen.has(`${route.path} ${route.status}`)).map(
      (route) => `${route.method} ${route.path} ${route.status}`,
    );
    expect(missing).toEqual([]);
    const statuses = new Set([...seen].map((entry) => Number(entry.split(' ')[1])));
    for (const status of [400, 401, 403, 404, 405, 409, 413, 415]) {
      expect(statuses.has(status), `an answer with ${status}`).toBe(true);
    }
  });
});
