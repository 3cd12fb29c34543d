/**
 * Abuse, over real HTTP against the local server on SQLite:
 *
 * 1. Property-based fuzzing (fast-check, fixed seeds) of every route in the route table, body
 *    and headers, for each kind of credential (none, bridge, device key, signed enrolled device,
 *    capability token, run, device key or token + delegation, garbage, and dead credentials
 *    that once worked): never a 5xx, every refusal a JSON error whose code maps to its status
 *    by the API's table, a caller kind the route does not accept never succeeds, and a refused
 *    request changes no state (every collection and the audit log, compared before and after;
 *    the only writes a refusal may make are the ones the contract asks for: the nonce of a
 *    correctly signed request, and the audit row of an enrollment fingerprint mismatch).
 * 2. Header edge cases sent byte for byte: repeated credential headers, 8 KiB and 64 KiB
 *    headers, latin1 and UTF-8 bytes, control characters, mixed-case names. Each is answered
 *    (our JSON error, or node's own 400/431 for what is not HTTP) and the server stays up.
 * 3. A capture test: a scripted session over every route and every kind of failure, on several
 *    services, with every log line and response body kept; no bridge key, device key,
 *    enrollment code, data key, key-encryption key, capability token or secret value appears
 *    anywhere it is not meant to.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localKeyring } from '../functions/src/adapters/local-keyring.js';
import { deviceKeyDigest, generateDeviceKey } from '../functions/src/auth/device-key-format.js';
import {
  generateDeviceKeys,
  signAttestation,
  signRequest,
} from '../functions/src/crypto/device-keys-format.js';
import type { Keyring } from '../functions/src/ports/keyring.js';
import { INDEXED_FIELDS, type CollectionName, type Store } from '../functions/src/ports/store.js';
import type { Route } from '../functions/src/routes/route.js';
import { ROUTES } from '../functions/src/routes/table.js';
import { manualClock, type ManualClock } from './helpers/clock.js';
import { sendRaw, type RawReply } from './helpers/raw-client.js';
import {
  BRIDGE_KEY,
  BRIDGE_KEY_2,
  startTestService,
  type ApiResult,
  type TestService,
} from './helpers/service.js';
import { bearer, mintTestToken } from './helpers/tokens.js';

/** The error table of the API contract (API.md), written out here rather than imported. */
const API_ERROR_STATUS: Readonly<Record<string, number>> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_exists: 409,
  failed_precondition: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  resource_exhausted: 429,
  internal: 500,
  unavailable: 503,
};

/**
 * Who may call each route, from the README's route table and its runs section (an oracle
 * independent of the route table under test). `none`: no header credential is read (public
 * documents, and /device/enroll whose credential is the code in the body). A route missing
 * here (added later) falls back to its declared policy.
 */
const AGENT_CALLERS = ['device', 'token', 'run', 'delegated'];
const EXPECTED_CALLERS: Readonly<Record<string, readonly string[] | 'none'>> = {
  '/agents/create': ['bridge'],
  '/agents/get': ['bridge', ...AGENT_CALLERS],
  '/agents/disable': ['bridge'],
  '/agents/enable': ['bridge'],
  '/device/issue': ['bridge', 'device'],
  '/device/revoke': ['bridge', 'device'],
  '/device/enrollments/create': ['bridge'],
  '/device/enroll': 'none',
  '/attestations/verify': ['bridge', ...AGENT_CALLERS],
  '/delegate': ['device', 'token'],
  '/delegate/revoke': ['bridge', 'device', 'token'],
  '/secrets/put': AGENT_CALLERS,
  '/secrets/get': AGENT_CALLERS,
  '/secrets/list': AGENT_CALLERS,
  '/secrets/metadata': AGENT_CALLERS,
  '/secrets/delete': AGENT_CALLERS,
  '/secrets/undelete': AGENT_CALLERS,
  '/secrets/destroy': AGENT_CALLERS,
  '/secrets/resolve': AGENT_CALLERS,
  '/tokens/register': ['bridge'],
  '/settings/list': ['bridge'],
  '/settings/set': ['bridge'],
  '/runs/spawn': ['device', 'token', 'run'],
  '/runs/complete': ['run'],
  '/runs/revoke': ['bridge', 'device', 'run'],
  '/.well-known/agentpack-identity': 'none',
  '/.well-known/agentpack-agent-identity/': 'none',
  '/healthz': 'none',
};

function expectedCallers(route: Route): readonly string[] | 'none' {
  const known = EXPECTED_CALLERS[route.path];
  if (known !== undefined) return known;
  return typeof route.policy === 'string' ? 'none' : route.policy;
}

const COLLECTIONS = Object.keys(INDEXED_FIELDS) as CollectionName[];
const SCAN_LIMIT = 10_000;

/** The whole state of a store: every collection (in id order) and the audit log. */
interface Snapshot {
  raw: Record<string, Array<{ id?: string }>>;
  text: Record<string, string>;
}

async function snapshot(store: Store): Promise<Snapshot> {
  const raw: Snapshot['raw'] = {};
  for (const c of COLLECTIONS) {
    const rows = await store.scan(c, null, SCAN_LIMIT);
    if (rows.length >= SCAN_LIMIT) throw new Error(`${c} outgrew the snapshot (${SCAN_LIMIT})`);
    raw[c] = rows;
  }
  raw['audit_events'] = (await store.auditEvents(1_000_000)) as Array<{ id?: string }>;
  const text = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, JSON.stringify(v)]));
  return { raw, text };
}

/** The names of the parts of two snapshots that differ. */
function changedParts(a: Snapshot, b: Snapshot): string[] {
  return Object.keys({ ...a.text, ...b.text }).filter((k) => a.text[k] !== b.text[k]);
}

/** What a refused request is allowed to write, by the contract. */
interface AllowedWrites {
  /** The store id of the nonce of a correctly signed request (it is spent even if refused). */
  nonceId?: string;
  /** An enrollment fingerprint mismatch is audited. */
  enrollMismatch?: boolean;
}

/** The changes between two snapshots that a refused request was not allowed to make. */
function forbiddenChanges(before: Snapshot, after: Snapshot, allowed: AllowedWrites): string[] {
  const problems: string[] = [];
  for (const part of changedParts(before, after)) {
    if (part === 'request_nonces' && allowed.nonceId !== undefined) {
      const was = before.raw[part]!.map((r) => JSON.stringify(r));
      const now = after.raw[part]!.filter((r) => r.id !== allowed.nonceId);
      const kept = before.raw[part]!.filter((r) => r.id !== allowed.nonceId);
      if (JSON.stringify(now) === JSON.stringify(kept) && was.length <= after.raw[part]!.length)
        continue;
    }
    if (part === 'audit_events' && allowed.enrollMismatch === true) {
      const added = after.raw[part]!.slice(before.raw[part]!.length) as Array<{ action?: string }>;
      const prefix = JSON.stringify(after.raw[part]!.slice(0, before.raw[part]!.length));
      if (
        prefix === before.text[part] &&
        added.length === 1 &&
        added[0]!.action === 'device.enroll_mismatch'
      ) {
        continue;
      }
    }
    problems.push(part);
  }
  return problems;
}

/** An error body exactly as the contract says: `{error: {code, message, details?}}`. */
function errorShapeProblem(status: number, body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'not a JSON object';
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'error') return `top-level keys ${keys.join(',')}`;
  const error = (body as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) return 'error is not an object';
  const { code, message, details, ...rest } = error as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return `unexpected error fields ${Object.keys(rest)}`;
  if (typeof code !== 'string' || !(code in API_ERROR_STATUS)) return `unknown code ${code}`;
  if (API_ERROR_STATUS[code] !== status) return `code ${code} with status ${status}`;
  if (typeof message !== 'string' || message.length === 0) return 'no message';
  if (details !== undefined && (typeof details !== 'object' || details === null)) {
    return 'details is not an object';
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The fixture the fuzzer acts on: agents, their keys, an enrolled device, a run, a delegation,
// a token, enrollment codes, some secrets. A successful fuzzed request may revoke a key,
// disable an agent, end the run or use a code; `ensure` repairs the fixture before the next
// run so every credential kind stays meaningful.
// ---------------------------------------------------------------------------------------------

const AGENT_A = 'fz-agent-a';
const AGENT_B = 'fz-agent-b';
const AGENT_C = 'fz-agent-c'; // disabled for good; never named by the generators
const DELEGABLE = [
  'agents/get',
  'secrets/put',
  'secrets/get',
  'secrets/list',
  'secrets/metadata',
  'secrets/delete',
  'secrets/undelete',
  'secrets/destroy',
  'secrets/resolve',
];
const RUN_SCOPE = [...DELEGABLE, 'runs/spawn'];

/** Settings a fuzzed bridge call may change that would starve whole credential kinds. */
const RESET_SETTINGS: Record<string, unknown> = {
  'secrets.require_sealed': false,
  'device.require_signed_requests': false,
  'delegation.max_ttl_seconds': 3600,
  'runs.max_ttl_seconds': 900,
  'runs.max_depth': 4,
};

type Seed = Uint8Array;

interface Ctx {
  svc: TestService;
  keyA: string;
  keyAId: string;
  keyB: string;
  keyBId: string;
  /** An enrolled device of agent A: its key and its pinned signing key. */
  enrolled: { key: string; keyId: string; seed: Seed };
  /** A live run of agent A and its signing key. */
  run: { id: string; seed: Seed; publicKey: string };
  delegationId: string;
  tokenA: string;
  /** An unused enrollment code for agent A, and one whose expected fingerprint never matches. */
  enrollCode: string;
  mismatchCode: string;
  /** Tokens that look right but are not: expired, tampered, unknown kid or agent, ... */
  forgedTokens: string[];
  /** Credential sets that were once valid or look valid, and must be refused. */
  dead: DeadCredential[];
}

/**
 * Makes the credential headers of one request. `correctlySigned`: it signs the request with the
 * right key at the right time, so the service may spend its nonce even while refusing it.
 */
type DeadCredential = ((sent: Unsigned) => Array<[string, string]>) & {
  correctlySigned?: boolean;
};

function correctlySigned(make: (sent: Unsigned) => Array<[string, string]>): DeadCredential {
  return Object.assign(make, { correctlySigned: true });
}

/** A request before its credential headers: what a signature covers. */
interface Unsigned {
  method: string;
  path: string;
  body: Buffer;
}

/** The real clock, plus a skew the fixture moves forward to expire a key and a delegation. */
const skewClock = { skewMs: 0, now: () => Date.now() + skewClock.skewMs };

function must(res: ApiResult, status: number, what: string): any {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${res.text}`);
  }
  return res.body;
}

async function issueKey(svc: TestService, agentId: string): Promise<[string, string]> {
  const body = must(
    await svc.post('/device/issue', { agent_id: agentId }, svc.bridge),
    201,
    'issue',
  );
  return [body.device_key, body.key_id];
}

async function keyActive(store: Store, key: string): Promise<boolean> {
  const doc = await store.get('device_keys', deviceKeyDigest(key));
  return (
    doc !== null &&
    doc.revoked_at === null &&
    (doc.expires_at === null || Date.parse(doc.expires_at) > Date.now() + 60_000)
  );
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

function seedOf(keys: ReturnType<typeof generateDeviceKeys>): Seed {
  return keys.signing.privateKey;
}

/** The signature headers of a request, signed with `seed` at the service's clock. */
function signed(seed: Seed, sent: Unsigned, nowMs = skewClock.now()): Array<[string, string]> {
  return Object.entries(
    signRequest({
      method: sent.method,
      path: sent.path.split('?')[0]!,
      body: sent.body,
      signingSeed: seed,
      nowMs,
    }),
  );
}

async function newEnrollment(
  svc: TestService,
  extra: Record<string, unknown> = {},
): Promise<string> {
  return must(
    await svc.post(
      '/device/enrollments/create',
      { agent_id: AGENT_A, ttl_seconds: 3600, ...extra },
      svc.bridge,
    ),
    201,
    'enrollment',
  ).code;
}

async function enrollDevice(svc: TestService): Promise<Ctx['enrolled']> {
  const keys = generateDeviceKeys();
  const body = must(
    await svc.post(
      '/device/enroll',
      {
        code: await newEnrollment(svc),
        sealing_public_key: b64(keys.sealing.publicKey),
        signing_public_key: b64(keys.signing.publicKey),
      },
      {},
    ),
    201,
    'enroll',
  );
  return { key: body.device_key, keyId: body.key_id, seed: seedOf(keys) };
}

async function spawnRun(svc: TestService, deviceKey: string): Promise<Ctx['run']> {
  const keys = generateDeviceKeys();
  const body = must(
    await svc.post(
      '/runs/spawn',
      { task: 'fuzz', scope: RUN_SCOPE, ttl_seconds: 900, public_key: b64(keys.signing.publicKey) },
      svc.device(deviceKey),
    ),
    201,
    'spawn',
  );
  return { id: body.run_id, seed: seedOf(keys), publicKey: b64(keys.signing.publicKey) };
}

function forgeTokens(nowMs: number): string[] {
  const valid = mintTestToken({ sub: AGENT_A, scope: DELEGABLE, nowMs });
  const [h, p, s] = valid.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return [
    mintTestToken({ sub: AGENT_A, scope: DELEGABLE, nowMs: nowMs - 3_600_000 }), // expired
    mintTestToken({ sub: 'fz-ghost-never-created', scope: DELEGABLE, nowMs }), // unknown agent
    mintTestToken({ sub: AGENT_A, scope: DELEGABLE, nowMs, ttlSeconds: 86_400 }), // too long
    mintTestToken({ sub: AGENT_A, scope: DELEGABLE, nowMs, aud: 'elsewhere' }),
    mintTestToken({ sub: AGENT_A, scope: DELEGABLE, nowMs, iss: 'someone-else' }),
    `${h}.${enc({ ...claims, sub: AGENT_B })}.${s}`, // tampered claims
    `${enc({ alg: 'none', typ: 'agentpack-cap+jwt', kid: 'test-key-1' })}.${p}.`,
    `${enc({ alg: 'EdDSA', typ: 'agentpack-cap+jwt', kid: 'unknown-kid' })}.${p}.${s}`,
    `${h}.${p}.${s.slice(0, -2)}`,
    `${h}.${p}`,
    valid.replace(/\./g, ''),
  ];
}

async function setUpFixture(svc: TestService): Promise<Ctx> {
  for (const [id, name] of [
    [AGENT_A, 'Agent A'],
    [AGENT_B, 'Agent B'],
    [AGENT_C, 'Agent C'],
  ] as const) {
    must(
      await svc.post('/agents/create', { agent_id: id, display_name: name }, svc.bridge),
      201,
      'create',
    );
  }
  const [keyA, keyAId] = await issueKey(svc, AGENT_A);
  const [keyB, keyBId] = await issueKey(svc, AGENT_B);
  const ctx: Ctx = {
    svc,
    keyA,
    keyAId,
    keyB,
    keyBId,
    enrolled: await enrollDevice(svc),
    run: await spawnRun(svc, keyA),
    delegationId: '',
    tokenA: mintTestToken({
      sub: AGENT_A,
      scope: [...RUN_SCOPE, 'delegate', 'delegate/revoke'],
      nowMs: Date.now(),
      ttlSeconds: 900,
    }),
    enrollCode: await newEnrollment(svc),
    mismatchCode: await newEnrollment(svc, {
      expected_fingerprint: `SHA256:${'A'.repeat(43)}`,
    }),
    forgedTokens: forgeTokens(Date.now()),
    dead: [],
  };
  for (let v = 1; v <= 3; v++) {
    must(
      await svc.post('/secrets/put', { name: 'api_key', value: `fz-a-${v}` }, svc.device(keyA)),
      200,
      'put',
    );
  }
  must(
    await svc.post('/secrets/delete', { name: 'api_key', versions: [2] }, svc.device(keyA)),
    200,
    'delete',
  );
  must(
    await svc.post('/secrets/put', { name: 'b_secret', value: 'fz-b-1' }, svc.device(keyB)),
    200,
    'put',
  );
  await ensure(ctx);
  ctx.dead = await deadCredentials(ctx);
  return ctx;
}

/**
 * Keys, runs, delegations and tokens that must be refused, each made the way a real one dies.
 * Each entry makes the credential headers of one request (some sign the request itself).
 */
async function deadCredentials(ctx: Ctx): Promise<DeadCredential[]> {
  const { svc } = ctx;
  const device = (key: string): [string, string] => ['x-agentpack-device-key', key];
  const delegation = (id: string): [string, string] => ['x-agentpack-delegation', id];
  const run = (id: string): [string, string] => ['x-agentpack-run', id];
  const [revokedKey, revokedKeyId] = await issueKey(svc, AGENT_A);
  must(await svc.post('/device/revoke', { key_id: revokedKeyId }, svc.bridge), 200, 'revoke');
  const expiring = must(
    await svc.post('/device/issue', { agent_id: AGENT_A, ttl_seconds: 1 }, svc.bridge),
    201,
    'issue',
  ).device_key as string;
  const delegate = async (key: string, to: string, ttl = 3600) =>
    must(
      await svc.post(
        '/delegate',
        { to_agent: to, scope: DELEGABLE, ttl_seconds: ttl },
        svc.device(key),
      ),
      201,
      'delegate',
    ).delegation_id as string;
  const revokedDelegation = await delegate(ctx.keyB, AGENT_A);
  must(
    await svc.post('/delegate/revoke', { delegation_id: revokedDelegation }, svc.device(ctx.keyB)),
    200,
    'revoke delegation',
  );
  const expiringDelegation = await delegate(ctx.keyB, AGENT_A, 1);
  const misaddressed = await delegate(ctx.keyA, AGENT_B);
  const [keyC] = await issueKey(svc, AGENT_C);
  const fromDisabled = await delegate(keyC, AGENT_A);
  const runOfC = await spawnRun(svc, keyC);
  // Runs that ended: completed, revoked, and a child of a revoked parent.
  const completed = await spawnRun(svc, ctx.keyA);
  const completeBody = Buffer.from('{}');
  must(
    await svc.request('/runs/complete', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-agentpack-run': completed.id,
        ...Object.fromEntries(
          signed(completed.seed, { method: 'POST', path: '/runs/complete', body: completeBody }),
        ),
      },
      body: completeBody,
    }),
    200,
    'complete',
  );
  const revokedRun = await spawnRun(svc, ctx.keyA);
  must(await svc.post('/runs/revoke', { run_id: revokedRun.id }, svc.bridge), 200, 'revoke run');
  const evicted = await enrollDevice(svc);
  must(await svc.post('/device/revoke', { key_id: evicted.keyId }, svc.bridge), 200, 'revoke');
  must(await svc.post('/agents/disable', { agent_id: AGENT_C }, svc.bridge), 200, 'disable');
  skewClock.skewMs += 2_000; // the 1-second key and delegation are now expired
  const tokenC = mintTestToken({ sub: AGENT_C, scope: DELEGABLE, nowMs: Date.now() });
  const otherSeed = seedOf(generateDeviceKeys());
  const fixed =
    (...headers: Array<[string, string]>): DeadCredential =>
    () =>
      headers;
  return [
    fixed(device(revokedKey)),
    fixed(device(expiring)),
    fixed(device(generateDeviceKey())),
    fixed(device(keyC)),
    fixed(['authorization', `Bearer ${tokenC}`]),
    fixed(device(ctx.keyA), delegation(revokedDelegation)),
    fixed(device(ctx.keyA), delegation(expiringDelegation)),
    fixed(device(ctx.keyA), delegation(misaddressed)),
    fixed(device(ctx.keyA), delegation(fromDisabled)),
    fixed(device(ctx.keyA), delegation(`dg_${randomBytes(16).toString('base64url')}`)),
    fixed(device(ctx.keyB), delegation(ctx.delegationId)),
    fixed(['authorization', `Bearer ${ctx.tokenA}`], delegation(revokedDelegation)),
    fixed(['authorization', `Bearer ${ctx.tokenA}`], delegation(misaddressed)),
    fixed(['x-agentpack-key', BRIDGE_KEY], delegation(ctx.delegationId)),
    fixed(['x-agentpack-key', BRIDGE_KEY], device(ctx.keyA)),
    fixed(device(ctx.keyA), ['authorization', `Bearer ${ctx.tokenA}`]),
    fixed(['x-agentpack-key', BRIDGE_KEY_2], ['authorization', `Bearer ${ctx.tokenA}`]),
    // Runs: ended ones (signed correctly), a disabled agent's, bad or missing signatures.
    correctlySigned((sent) => [run(completed.id), ...signed(completed.seed, sent)]),
    correctlySigned((sent) => [run(revokedRun.id), ...signed(revokedRun.seed, sent)]),
    correctlySigned((sent) => [run(runOfC.id), ...signed(runOfC.seed, sent)]),
    (sent) => [run(`run_${randomBytes(16).toString('base64url')}`), ...signed(otherSeed, sent)],
    (sent) => [run(ctx.run.id), ...signed(otherSeed, sent)],
    (sent) => [run(ctx.run.id), ...signed(ctx.run.seed, sent, skewClock.now() - 120_000)],
    (sent) => [
      run(ctx.run.id),
      ...signed(ctx.run.seed, { ...sent, body: Buffer.concat([sent.body, Buffer.from(' ')]) }),
    ],
    () => [run(ctx.run.id)],
    correctlySigned((sent) => [
      run(ctx.run.id),
      ...signed(ctx.run.seed, sent),
      delegation(ctx.delegationId),
    ]),
    correctlySigned((sent) => [run(ctx.run.id), ...signed(ctx.run.seed, sent), device(ctx.keyA)]),
    // Enrolled devices: evicted, signed by another key, stale, or with a partial signature.
    correctlySigned((sent) => [device(evicted.key), ...signed(evicted.seed, sent)]),
    (sent) => [device(ctx.enrolled.key), ...signed(otherSeed, sent)],
    (sent) => [device(ctx.enrolled.key), ...signed(ctx.enrolled.seed, sent, Date.now() - 300_000)],
    (sent) => [device(ctx.enrolled.key), ...signed(ctx.enrolled.seed, sent).slice(0, 2)],
    (sent) => [device(ctx.keyA), ...signed(ctx.enrolled.seed, sent)], // not enrolled
    ...ctx.forgedTokens.map((t) => fixed(['authorization', `Bearer ${t}`])),
  ];
}

/**
 * Repairs whatever a successful fuzzed request broke in the fixture. Returns true when it had
 * to change anything.
 */
async function ensure(ctx: Ctx): Promise<boolean> {
  const { svc } = ctx;
  const before = svc.responses.length;
  for (const [key, value] of Object.entries(RESET_SETTINGS)) {
    const doc = await svc.store.get('settings', key);
    if (doc !== null && doc.value !== value) {
      must(await svc.post('/settings/set', { key, value }, svc.bridge), 200, 'setting');
    }
  }
  for (const id of [AGENT_A, AGENT_B]) {
    const agent = await svc.store.get('agents', id);
    if (agent === null) throw new Error(`fixture agent ${id} vanished`);
    if (agent.disabled)
      must(await svc.post('/agents/enable', { agent_id: id }, svc.bridge), 200, 'enable');
  }
  if (ctx.dead.length > 0 && (await svc.store.get('agents', AGENT_C))?.disabled === false) {
    must(await svc.post('/agents/disable', { agent_id: AGENT_C }, svc.bridge), 200, 'disable');
  }
  if (!(await keyActive(svc.store, ctx.keyA)))
    [ctx.keyA, ctx.keyAId] = await issueKey(svc, AGENT_A);
  if (!(await keyActive(svc.store, ctx.keyB)))
    [ctx.keyB, ctx.keyBId] = await issueKey(svc, AGENT_B);
  if (!(await keyActive(svc.store, ctx.enrolled.key))) ctx.enrolled = await enrollDevice(svc);
  const run = await sendRaw(svc.url, {
    method: 'GET',
    path: `/.well-known/agentpack-agent-identity/${ctx.run.id}`,
    headers: [],
  });
  if (run.body?.status !== 'active' || Date.parse(run.body.expires_at) < Date.now() + 60_000) {
    ctx.run = await spawnRun(svc, ctx.keyA);
  }
  const code = await svc.store.get(
    'device_enrollments',
    createHash('sha256').update(`agentpack-enrollment\n${ctx.enrollCode}`).digest('base64url'),
  );
  if (code === null || code.used_at !== null) ctx.enrollCode = await newEnrollment(svc);
  const delegation =
    ctx.delegationId === '' ? null : await svc.store.get('delegations', ctx.delegationId);
  const scopeOk = delegation !== null && DELEGABLE.every((rpc) => delegation.scope.includes(rpc));
  if (
    delegation === null ||
    !scopeOk ||
    delegation.revoked_at !== null ||
    Date.parse(delegation.expires_at) < Date.now() + 120_000
  ) {
    ctx.delegationId = must(
      await svc.post(
        '/delegate',
        { to_agent: AGENT_A, scope: DELEGABLE, ttl_seconds: 3600 },
        svc.device(ctx.keyB),
      ),
      201,
      'delegate',
    ).delegation_id;
  }
  return svc.responses.length !== before;
}

// ---------------------------------------------------------------------------------------------
// Generators. Values that depend on the fixture (a real key id, a real delegation) are `Ref`s,
// resolved when the request is sent; numbers that JSON.stringify cannot write are `Raw`.
// ---------------------------------------------------------------------------------------------

class Ref {
  constructor(
    readonly label: string,
    readonly pick: (ctx: Ctx) => string,
  ) {}
  [fc.toStringMethod](): string {
    return `<${this.label}>`;
  }
}

/** A long literal, printed by its label in counterexamples. */
class Long {
  constructor(
    readonly label: string,
    readonly value: string,
  ) {}
  [fc.toStringMethod](): string {
    return `<${this.label}>`;
  }
}

class Raw {
  constructor(readonly text: string) {}
  [fc.toStringMethod](): string {
    return this.text.length > 40
      ? `<raw ${this.text.slice(0, 20)}… (${this.text.length})>`
      : this.text;
  }
}

type Pairs = Array<[string, unknown]>;

/** The public key of the fixture's run (spawning another run with it is refused). */
function runPublicKey(ctx: Ctx): string {
  return ctx.run.publicKey;
}

/** A valid attestation signature of a fixed job by the enrolled device (for another job: invalid). */
function attestationBy(ctx: Ctx): string {
  return signAttestation(
    {
      job_id: 'job-1',
      input_sha256: '0'.repeat(64),
      output_sha256: '0'.repeat(64),
      rc: 0,
    },
    ctx.enrolled.seed,
  );
}

function render(value: unknown, ctx: Ctx): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Ref) return JSON.stringify(value.pick(ctx));
  if (value instanceof Long) return JSON.stringify(value.value);
  if (Array.isArray(value)) return `[${value.map((v) => render(v, ctx)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${render(v, ctx)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function renderPairs(pairs: Pairs, ctx: Ctx): string {
  return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${render(v, ctx)}`).join(',')}}`;
}

const LATIN1_PRINTABLE = [
  ...Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)),
  ...Array.from({ length: 0x100 - 0x80 }, (_, i) => String.fromCharCode(0x80 + i)),
];
const PRINTABLE_ASCII = LATIN1_PRINTABLE.filter((c) => c > ' ' && c < '\x7f');

const latin1String = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...LATIN1_PRINTABLE), maxLength });

/** Numbers and number-like text that JSON.stringify would not produce. */
const rawNumber = fc
  .constantFrom(
    '-0',
    '0.0',
    '-0.0',
    '1e308',
    '-1e308',
    '1e309',
    '-1e309',
    '5e-324',
    '1E2',
    '1.0',
    '2147483648',
    '9007199254740993',
    '123456789012345678901234567890',
    '-1',
    '1.5',
  )
  .map((t) => new Raw(t));

/** Integers at the edges: of int32, of safe integers, of doubles, and -0. */
const boundaryNumber = fc.oneof(
  fc.constantFrom(0, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40 + 1, 2 ** 53 - 1, 2 ** 53),
  fc
    .constantFrom('1e308', '1.7976931348623157e308', '9007199254740993', '-0', '1e3', '1.0')
    .map((t) => new Raw(t)),
);

const HUGE = new Long('40k x', 'x'.repeat(40_000));
const HUGE_UNICODE = new Long('6k e-acute and emoji', '\u00e9\u{1F600}'.repeat(6_000));

const deepArray = fc
  .integer({ min: 1, max: 20_000 })
  .map((d) => new Raw(`${'['.repeat(d)}${']'.repeat(d)}`));
const deepObject = fc
  .integer({ min: 1, max: 5_000 })
  .map((d) => new Raw(`${'{"a":'.repeat(d)}1${'}'.repeat(d)}`));

/** Values of the wrong type, shape or size for any field. */
const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  rawNumber,
  fc.constantFrom('NaN', 'Infinity', '-0', '1e308', '', ' ', '0', 'true', 'null'),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom('\ud800', 'a\udfffb', '\u0000', 'a\nb', '\u202e', '\ufeff'),
  fc.constantFrom(HUGE, HUGE_UNICODE),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  deepArray,
  deepObject,
);

const agentId = fc.oneof(
  fc.constantFrom(AGENT_A, AGENT_B, 'fz-nobody'),
  fc.stringMatching(/^[a-z0-9][a-z0-9_-]{2,20}$/),
);
const secretName = fc.oneof(
  fc.constantFrom('api_key', 'b_secret', 'other', 'x'),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/),
);
const scopeEntry = fc.oneof(
  fc.constantFrom(
    ...DELEGABLE,
    'delegate',
    'delegate/revoke',
    'agents/create',
    'settings/set',
    'secrets/get:api_key',
    'secrets/list:api_key',
    'agents/get:x',
    'secrets/*',
    '',
  ),
  fc.string({ maxLength: 12 }),
);
const secretRef = fc.oneof(
  fc.constantFrom(
    `agentpack.secret://${AGENT_A}/api_key`,
    `agentpack.secret://${AGENT_A}/api_key#1`,
    `agentpack.secret://${AGENT_A}/api_key#2`,
    `agentpack.secret://${AGENT_B}/b_secret`,
    `agentpack.secret://${AGENT_B}/b_secret#9999999999`,
    `agentpack.secret://fz-nobody/x`,
    'agentpack.secret://',
    'agentpack.secret:///#',
  ),
  fc.tuple(agentId, secretName).map(([a, n]) => `agentpack.secret://${a}/${n}`),
  fc.string({ maxLength: 40 }),
);

/** Plausible values per field (`path:field` first, then `field`). */
/** Raw 32-byte keys: fresh valid ones, small-order and malformed ones. */
const freshSealing = new Ref('fresh X25519 key', () => b64(generateDeviceKeys().sealing.publicKey));
const freshSigning = new Ref('fresh Ed25519 key', () =>
  b64(generateDeviceKeys().signing.publicKey),
);
const badRawKey = fc.oneof(
  fc.constantFrom(
    b64(Buffer.alloc(32)), // the all-zero point: small order on both curves
    b64(Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])), // identity / order-1 point
    b64(Buffer.alloc(32, 0xff)), // non-canonical
    b64(Buffer.alloc(31)),
    b64(Buffer.alloc(33)),
    `${b64(randomBytes(32))}=`,
    Buffer.from(randomBytes(32)).toString('base64'),
  ),
  fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
);
const rawKey = (fresh: Ref) =>
  fc.oneof({ arbitrary: fc.constant(fresh), weight: 3 }, { arbitrary: badRawKey, weight: 1 });
const sha256Hex = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{64}$/),
  fc.constantFrom('0'.repeat(64), 'F'.repeat(64), 'a'.repeat(63), 'a'.repeat(65)),
);

const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  expected_fingerprint: fc.oneof(
    fc.stringMatching(/^SHA256:[A-Za-z0-9_-]{43}$/),
    fc.constantFrom('SHA256:', `sha256:${'A'.repeat(43)}`, `SHA256:${'A'.repeat(44)}`),
  ),
  replaces_key_id: fc.oneof(
    fc.constant(new Ref('keyAId', (c) => c.keyAId)),
    fc.constant(new Ref('enrolled key id', (c) => c.enrolled.keyId)),
    fc.stringMatching(/^dk_[A-Za-z0-9_-]{16}$/),
  ),
  code: fc.oneof(
    { arbitrary: fc.constant(new Ref('enrollment code', (c) => c.enrollCode)), weight: 4 },
    { arbitrary: fc.constant(new Ref('mismatch code', (c) => c.mismatchCode)), weight: 2 },
    { arbitrary: fc.stringMatching(/^apen_[A-Za-z0-9_-]{43}$/), weight: 1 },
    { arbitrary: fc.string({ maxLength: 60 }), weight: 1 },
  ),
  sealing_public_key: rawKey(freshSealing),
  signing_public_key: rawKey(freshSigning),
  public_key: fc.oneof(
    { arbitrary: rawKey(freshSigning), weight: 4 },
    { arbitrary: fc.constant(new Ref('run key', (c) => runPublicKey(c))), weight: 1 },
  ),
  job_id: fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
    fc.constantFrom('job-1', 'a\nb', 'x'.repeat(201)),
  ),
  input_sha256: fc.oneof(fc.constant('0'.repeat(64)), sha256Hex),
  output_sha256: fc.oneof(fc.constant('0'.repeat(64)), sha256Hex),
  rc: fc.oneof(fc.integer({ min: -5, max: 300 }), boundaryNumber, fc.constant(-2147483649)),
  signature: fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9_-]{86}$/),
    fc.constant(new Ref('attestation by the enrolled device', (c) => attestationBy(c))),
    fc.string({ maxLength: 40 }),
  ),
  seal: fc.boolean(),
  task: fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
    fc.constantFrom('x'.repeat(200), 'x'.repeat(201), 'a\u0007b'),
  ),
  run_id: fc.oneof(
    { arbitrary: fc.constant(new Ref('run id', (c) => c.run.id)), weight: 2 },
    { arbitrary: fc.stringMatching(/^run_[A-Za-z0-9_-]{22}$/), weight: 1 },
  ),
  agent_id: agentId,
  to_agent: agentId,
  sub: agentId,
  display_name: fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
    fc.constantFrom('  padded  ', 'x'.repeat(200), 'x'.repeat(201), '\t'),
  ),
  label: fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
    fc.constantFrom('x'.repeat(128), 'x'.repeat(129)),
  ),
  ttl_seconds: fc.oneof(
    fc.integer({ min: 1, max: 400 * 86_400 }),
    fc.constantFrom(59, 60, 3600, 3601, 7 * 86_400 + 1, 365 * 86_400 + 1),
    boundaryNumber,
  ),
  rotate: fc.boolean(),
  key_id: fc.oneof(
    fc.constant(new Ref('keyAId', (c) => c.keyAId)),
    fc.constant(new Ref('enrolled key id', (c) => c.enrolled.keyId)),
    fc.constant(new Ref('keyBId', (c) => c.keyBId)),
    fc.stringMatching(/^dk_[A-Za-z0-9_-]{16}$/),
  ),
  scope: fc.array(scopeEntry, { minLength: 1, maxLength: 5 }),
  delegation_id: fc.oneof(
    fc.constant(new Ref('delegationId', (c) => c.delegationId)),
    fc.stringMatching(/^dg_[A-Za-z0-9_-]{22}$/),
  ),
  name: secretName,
  value: fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom(
      new Long('32 KiB', 'x'.repeat(32 * 1024)),
      new Long('32 KiB + 1', 'x'.repeat(32 * 1024 + 1)),
      new Long('16385 e-acute', '\u00e9'.repeat(16_385)),
    ),
  ),
  cas: fc.oneof(fc.nat({ max: 12 }), boundaryNumber),
  version: fc.oneof(fc.integer({ min: 1, max: 12 }), boundaryNumber),
  versions: fc.array(fc.oneof(fc.integer({ min: 1, max: 12 }), boundaryNumber), {
    minLength: 1,
    maxLength: 5,
  }),
  refs: fc.array(secretRef, { minLength: 1, maxLength: 4 }),
  jti: fc.string({ unit: fc.constantFrom(...PRINTABLE_ASCII), minLength: 1, maxLength: 40 }),
  iat: fc.oneof(
    fc.integer({ min: 0, max: 2 ** 40 }),
    fc.constant(Math.floor(Date.now() / 1000)),
    boundaryNumber,
  ),
  exp: fc.oneof(
    fc.integer({ min: 0, max: 2 ** 40 }),
    fc.constant(Math.floor(Date.now() / 1000) + 300),
    boundaryNumber,
  ),
  kid: fc.oneof(fc.constant('test-key-1'), fc.string({ minLength: 1, maxLength: 20 })),
  key: fc.constantFrom(
    'delegation.max_ttl_seconds',
    'device_key.max_ttl_seconds',
    'secrets.max_versions',
    'secrets.require_sealed',
    'device.require_signed_requests',
    'runs.max_ttl_seconds',
    'runs.max_depth',
    'secrets.nope',
    '__proto__',
    'constructor',
  ),
  '/settings/set:value': fc.oneof(
    fc.integer({ min: -10, max: 400 * 86_400 }),
    fc.constantFrom(1, 60, 100, 101, 3600),
    boundaryNumber,
    fc.boolean(),
    fc.string({ maxLength: 10 }),
  ),
};

const EXTRA_KEYS = fc.oneof(
  fc.constantFrom('agent_id', '__proto__', 'constructor', 'prototype', 'extra', 'toString', ''),
  fc.string({ maxLength: 12 }),
);

/** The fields of a route's object schema, through refinements and wrappers (zod 3 or 4). */
function fieldsOf(route: Route): string[] {
  let schema: any = route.input;
  for (let depth = 0; depth < 5 && schema !== undefined; depth++) {
    if (schema.shape !== undefined) return Object.keys(schema.shape);
    schema =
      schema._def?.schema ?? schema._def?.innerType ?? schema.def?.in ?? schema.def?.innerType;
  }
  return [];
}

const nowSeconds = Math.floor(Date.now() / 1000);

/**
 * Values that pass the schema and, against the fixture, mostly the handler too (`path:field`
 * first, then `field`): so that every route also succeeds under fuzzing, not only refuses.
 */
const VALID_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  agent_id: fc.constantFrom(AGENT_A, AGENT_B),
  '/agents/create:agent_id': fc.stringMatching(/^fz-new-[a-z0-9]{8}$/),
  '/device/enrollments/create:agent_id': fc.constant(AGENT_A),
  to_agent: fc.constant(AGENT_B),
  sub: fc.constantFrom(AGENT_A, AGENT_B),
  display_name: fc.stringMatching(/^[A-Za-z][A-Za-z0-9 ]{0,20}$/),
  label: fc.constantFrom('laptop', 'ci runner', '\u00e9t\u00e9'),
  ttl_seconds: fc.integer({ min: 60, max: 3600 }),
  rotate: fc.boolean(),
  key_id: fc.constantFrom(
    new Ref('keyAId', (c) => c.keyAId),
    new Ref('enrolled key id', (c) => c.enrolled.keyId),
  ),
  replaces_key_id: fc.constant(new Ref('keyAId', (c) => c.keyAId)),
  scope: fc.subarray(DELEGABLE, { minLength: 1 }),
  '/runs/spawn:scope': fc.subarray(RUN_SCOPE, { minLength: 1 }),
  '/tokens/register:scope': fc.subarray(DELEGABLE, { minLength: 1 }),
  delegation_id: fc.constant(new Ref('delegationId', (c) => c.delegationId)),
  name: fc.constantFrom('api_key', 'b_secret', 'other'),
  value: fc.string({ maxLength: 20 }),
  version: fc.integer({ min: 1, max: 3 }),
  versions: fc.subarray([1, 2, 3], { minLength: 1 }),
  refs: fc.subarray(
    [
      `agentpack.secret://${AGENT_A}/api_key`,
      `agentpack.secret://${AGENT_A}/api_key#1`,
      `agentpack.secret://${AGENT_A}/api_key#3`,
    ],
    { minLength: 1 },
  ),
  jti: fc.uuid(),
  iat: fc.constant(nowSeconds),
  exp: fc.constant(nowSeconds + 300),
  kid: fc.constant('test-key-1'),
  code: fc.constant(new Ref('enrollment code', (c) => c.enrollCode)),
  sealing_public_key: fc.constant(freshSealing),
  signing_public_key: fc.constant(freshSigning),
  public_key: fc.constant(freshSigning),
  job_id: fc.constant('job-1'),
  input_sha256: fc.constant('0'.repeat(64)),
  output_sha256: fc.constant('0'.repeat(64)),
  rc: fc.constant(0),
  signature: fc.constant(new Ref('attestation by the enrolled device', (c) => attestationBy(c))),
  seal: fc.constant(false),
  task: fc.constantFrom('summarise inbox', 'fuzz task'),
  run_id: fc.constant(new Ref('run id', (c) => c.run.id)),
};

/** Whole bodies where fields depend on each other. */
const VALID_BODIES: Record<string, fc.Arbitrary<Pairs>> = {
  '/settings/set': fc.constantFrom<Pairs>(
    [
      ['key', 'secrets.max_versions'],
      ['value', 10],
    ],
    [
      ['key', 'secrets.max_versions'],
      ['value', 3],
    ],
    [
      ['key', 'delegation.max_ttl_seconds'],
      ['value', 3600],
    ],
    [
      ['key', 'device_key.max_ttl_seconds'],
      ['value', 86_400],
    ],
    [
      ['key', 'runs.max_depth'],
      ['value', 4],
    ],
  ),
};

/**
 * A body built from the route's own fields: valid (against the fixture), clean (each field
 * plausible or left out), or mutated (wrong types and sizes, extra and repeated fields).
 */
function nearValidBody(route: Route): fc.Arbitrary<Pairs> {
  const plausible = (field: string) =>
    FIELD_VALUES[`${route.path}:${field}`] ?? FIELD_VALUES[field] ?? weird;
  const validValue = (field: string) =>
    VALID_VALUES[`${route.path}:${field}`] ?? VALID_VALUES[field] ?? plausible(field);
  const valid =
    VALID_BODIES[route.path] ??
    fc
      .tuple(
        ...fieldsOf(route).map((field) =>
          fc.oneof(
            { arbitrary: validValue(field).map((v): Pairs => [[field, v]]), weight: 8 },
            { arbitrary: fc.constant<Pairs>([]), weight: 1 },
          ),
        ),
      )
      .map((parts) => parts.flat());
  const clean = fc
    .tuple(
      ...fieldsOf(route).map((field) =>
        fc.oneof(
          { arbitrary: plausible(field).map((v): Pairs => [[field, v]]), weight: 7 },
          { arbitrary: fc.constant<Pairs>([]), weight: 3 },
        ),
      ),
    )
    .map((parts) => parts.flat());
  const mutated = fc
    .tuple(
      fc.tuple(
        ...fieldsOf(route).map((field) =>
          fc.oneof(
            { arbitrary: plausible(field).map((v): Pairs => [[field, v]]), weight: 5 },
            { arbitrary: weird.map((v): Pairs => [[field, v]]), weight: 3 },
            { arbitrary: fc.constant<Pairs>([]), weight: 2 },
          ),
        ),
      ),
      fc.array(fc.tuple(EXTRA_KEYS, weird), { maxLength: 2 }),
      fc.boolean(),
      fc.nat(),
    )
    .map(([parts, extras, duplicate, which]) => {
      const pairs: Pairs = parts.flat();
      if (duplicate && pairs.length > 0) {
        const [k] = pairs[which % pairs.length]!;
        pairs.push([k, 'dup']);
      }
      return [...pairs, ...extras];
    });
  return fc.oneof(valid, clean, mutated);
}

type BodyPlan =
  | { kind: 'pairs'; pairs: Pairs }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'empty' }
  | { kind: 'oversized'; extra: number };

function bodyPlan(route: Route): fc.Arbitrary<BodyPlan> {
  const post = route.method === 'POST';
  return fc.oneof(
    {
      arbitrary: nearValidBody(route).map((pairs): BodyPlan => ({ kind: 'pairs', pairs })),
      weight: post ? 12 : 1,
    },
    { arbitrary: fc.jsonValue().map((value): BodyPlan => ({ kind: 'json', value })), weight: 2 },
    {
      arbitrary: fc
        .string({ unit: 'binary', maxLength: 60 })
        .map((text): BodyPlan => ({ kind: 'text', text })),
      weight: 1,
    },
    {
      arbitrary: fc
        .uint8Array({ maxLength: 40 })
        .map((bytes): BodyPlan => ({ kind: 'bytes', bytes })),
      weight: 1,
    },
    { arbitrary: fc.constant<BodyPlan>({ kind: 'empty' }), weight: post ? 1 : 8 },
    {
      arbitrary: fc
        .integer({ min: 1, max: 4096 })
        .map((extra): BodyPlan => ({ kind: 'oversized', extra })),
      weight: 1,
    },
  );
}

function renderBody(plan: BodyPlan, ctx: Ctx): Buffer {
  switch (plan.kind) {
    case 'pairs':
      return Buffer.from(renderPairs(plan.pairs, ctx), 'utf8');
    case 'json':
      return Buffer.from(JSON.stringify(plan.value) ?? '', 'utf8');
    case 'text':
      return Buffer.from(plan.text, 'utf8');
    case 'bytes':
      return Buffer.from(plan.bytes);
    case 'empty':
      return Buffer.alloc(0);
    case 'oversized':
      return Buffer.from(`{"name":"${'x'.repeat(64 * 1024 + plan.extra)}"}`, 'utf8');
  }
}

/** The credential kinds the fuzzer sends. `delegated-*` is a caller kind `delegated`. */
const KINDS = [
  'none',
  'bridge',
  'device',
  'signed-device',
  'token',
  'run',
  'delegated-device',
  'delegated-token',
  'garbage',
  'dead',
] as const;
type Kind = (typeof KINDS)[number];

const CALLER_KIND: Record<Kind, string | null> = {
  none: null,
  bridge: 'bridge',
  device: 'device',
  'signed-device': 'device',
  token: 'token',
  run: 'run',
  'delegated-device': 'delegated',
  'delegated-token': 'delegated',
  garbage: null,
  dead: null,
};

const CREDENTIAL_NAMES = [
  'x-agentpack-key',
  'x-agentpack-device-key',
  'authorization',
  'x-agentpack-delegation',
];

type HeaderValue = string | Ref;

const garbageValue: fc.Arbitrary<HeaderValue> = fc.oneof(
  latin1String(40),
  fc.constantFrom(
    '',
    'Bearer',
    'Bearer ',
    'bearer  x',
    'Basic Zm9vOmJhcg==',
    'Bearer a.b.c',
    'x'.repeat(513),
    'apdk_',
    'dg_',
    'dg_AAAAAAAAAAAAAAAAAAAAAA',
    'null',
  ),
  fc.stringMatching(/^apdk_[A-Za-z0-9_-]{49}$/),
  fc.constantFrom(
    new Ref('long bearer', () => `Bearer ${'A'.repeat(4000)}`),
    new Ref('keyA minus one', (c) => c.keyA.slice(0, -1)),
    new Ref('keyA plus x', (c) => `${c.keyA}x`),
    new Ref('keyA upper', (c) => c.keyA.toUpperCase()),
    new Ref('bridge upper', () => BRIDGE_KEY.toUpperCase()),
    new Ref('bridge plus x', () => `${BRIDGE_KEY}x`),
    new Ref('bridge as bearer', () => `Bearer ${BRIDGE_KEY}`),
    new Ref('device as bearer', (c) => `Bearer ${c.keyA}`),
    new Ref('token plus x', (c) => `Bearer ${c.tokenA}x`),
    new Ref('token bare', (c) => c.tokenA),
    new Ref('delegation plus x', (c) => `${c.delegationId}x`),
  ),
  fc
    .nat()
    .map(
      (i) => new Ref('forged token', (c) => `Bearer ${c.forgedTokens[i % c.forgedTokens.length]}`),
    ),
);

function credentialHeaders(
  kind: Kind,
  ctx: Ctx,
  garbage: Array<[string, HeaderValue]>,
  pick: number,
  unsigned: Unsigned,
): Array<[string, string]> {
  const resolve = (v: HeaderValue) => (v instanceof Ref ? v.pick(ctx) : v);
  switch (kind) {
    case 'none':
      return [];
    case 'bridge':
      return [['x-agentpack-key', BRIDGE_KEY]];
    case 'device':
      return [['x-agentpack-device-key', ctx.keyA]];
    case 'signed-device':
      return [['x-agentpack-device-key', ctx.enrolled.key], ...signed(ctx.enrolled.seed, unsigned)];
    case 'run':
      return [['x-agentpack-run', ctx.run.id], ...signed(ctx.run.seed, unsigned)];
    case 'token':
      return [['authorization', `Bearer ${ctx.tokenA}`]];
    case 'delegated-device':
      return [
        ['x-agentpack-device-key', ctx.keyA],
        ['x-agentpack-delegation', ctx.delegationId],
      ];
    case 'delegated-token':
      return [
        ['authorization', `Bearer ${ctx.tokenA}`],
        ['x-agentpack-delegation', ctx.delegationId],
      ];
    case 'garbage':
      return garbage.map(([n, v]) => [n, resolve(v)]);
    case 'dead':
      return ctx.dead[pick % ctx.dead.length]!(unsigned);
  }
}

type CaseMode = 'lower' | 'upper' | 'title' | 'alternate';

function recase(name: string, mode: CaseMode): string {
  switch (mode) {
    case 'lower':
      return name;
    case 'upper':
      return name.toUpperCase();
    case 'title':
      return name.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase());
    case 'alternate':
      return [...name].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c)).join('');
  }
}

interface HeaderPlan {
  caseMode: CaseMode;
  /** Send a credential header twice: with the same value, or with another. */
  repeat: 'no' | 'same' | 'other';
  contentType: string | null | 'twice';
  extras: Array<[string, HeaderValue]>;
  garbage: Array<[string, HeaderValue]>;
  /** Which dead credential set to send. */
  pick: number;
  /** The path segment after a prefix route (a run id, mostly). */
  suffix: HeaderValue;
  method: string | null;
  pathVariant: 'exact' | 'query' | 'trailing' | 'upper';
}

const mutatedHeaderPlan: fc.Arbitrary<HeaderPlan> = fc.record({
  caseMode: fc.constantFrom<CaseMode>('lower', 'upper', 'title', 'alternate'),
  repeat: fc.oneof(
    { arbitrary: fc.constant<'no'>('no'), weight: 8 },
    { arbitrary: fc.constantFrom<'same' | 'other'>('same', 'other'), weight: 1 },
  ),
  contentType: fc.oneof(
    { arbitrary: fc.constant('application/json'), weight: 16 },
    {
      arbitrary: fc.constantFrom<string | null | 'twice'>(
        null,
        'twice',
        'Application/JSON; charset=UTF-8',
        'application/json;charset="utf-8"',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        'application/json; foo=bar',
        'application/jsonx',
        'application/x-www-form-urlencoded',
        'text/plain',
        'multipart/form-data; boundary=x',
        '',
        '*/*',
        'application/json, text/plain',
      ),
      weight: 2,
    },
    { arbitrary: latin1String(20), weight: 1 },
  ),
  extras: fc.oneof(
    { arbitrary: fc.constant<Array<[string, HeaderValue]>>([]), weight: 4 },
    {
      arbitrary: fc.array(
        fc.oneof(
          fc.constantFrom<[string, HeaderValue]>(
            ['x-forwarded-for', '10.0.0.1'],
            ['cookie', 'session=abc'],
            ['accept', '*/*'],
            ['user-agent', 'fuzz/1.0'],
            ['authorization', 'Basic Zm9vOmJhcg=='],
            ['x-agentpack-delegation', 'dg_not-a-real-delegation'],
            ['x-agentpack-key', ''],
            ['x-agentpack-run', 'run_x'],
          ),
          fc.tuple(
            fc.stringMatching(/^x-[a-z0-9-]{1,12}$/),
            latin1String(30) as fc.Arbitrary<HeaderValue>,
          ),
        ),
        { minLength: 1, maxLength: 2 },
      ),
      weight: 1,
    },
  ),
  garbage: fc.array(fc.tuple(fc.constantFrom(...CREDENTIAL_NAMES), garbageValue), {
    minLength: 1,
    maxLength: 3,
  }),
  pick: fc.nat(),
  suffix: fc.oneof(
    { arbitrary: fc.constant(new Ref('run id', (c) => c.run.id)), weight: 4 },
    { arbitrary: fc.stringMatching(/^run_[A-Za-z0-9_-]{22}$/), weight: 2 },
    {
      arbitrary: fc.constantFrom<HeaderValue>('', 'x', '..', 'a/b', '%2e%2e', 'run_x/extra'),
      weight: 1,
    },
    {
      arbitrary: fc.string({ unit: fc.constantFrom(...PRINTABLE_ASCII), maxLength: 70 }),
      weight: 1,
    },
  ),
  method: fc.oneof(
    { arbitrary: fc.constant(null), weight: 12 },
    { arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), weight: 1 },
  ),
  pathVariant: fc.oneof(
    { arbitrary: fc.constant<'exact'>('exact'), weight: 12 },
    {
      arbitrary: fc.constantFrom<'query' | 'trailing' | 'upper'>('query', 'trailing', 'upper'),
      weight: 1,
    },
  ),
});
/** Most runs send clean headers, so the body generators reach the handlers. */
const headerPlan: fc.Arbitrary<HeaderPlan> = fc.oneof(
  {
    arbitrary: mutatedHeaderPlan.map((plan): HeaderPlan => ({
      ...plan,
      repeat: 'no',
      contentType: 'application/json',
      extras: [],
      method: null,
      pathVariant: 'exact',
    })),
    weight: 3,
  },
  { arbitrary: mutatedHeaderPlan, weight: 2 },
);

interface Sent {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Signed with the right key at the right time: the service may spend the nonce. */
  correctlySigned: boolean;
}

function buildRequest(route: Route, kind: Kind, plan: HeaderPlan, body: BodyPlan, ctx: Ctx): Sent {
  const resolve = (v: HeaderValue) => (v instanceof Ref ? v.pick(ctx) : v);
  const base = route.match === 'prefix' ? `${route.path}${resolve(plan.suffix)}` : route.path;
  const path =
    plan.pathVariant === 'exact'
      ? base
      : plan.pathVariant === 'query'
        ? `${base}?agent_id=${AGENT_B}&x=1`
        : plan.pathVariant === 'trailing'
          ? `${base}/`
          : base.toUpperCase();
  const method = plan.method ?? route.method;
  const rendered = renderBody(body, ctx);
  const credentials = credentialHeaders(kind, ctx, plan.garbage, plan.pick, {
    method,
    path,
    body: rendered,
  });
  const headers: Array<[string, string]> = credentials.map(([n, v]) => [
    recase(n, plan.caseMode),
    v,
  ]);
  if (plan.repeat !== 'no' && credentials.length > 0) {
    const [name, value] = credentials[0]!;
    headers.push([
      recase(name, plan.caseMode === 'lower' ? 'upper' : 'lower'),
      plan.repeat === 'same' ? value : 'other-value',
    ]);
  }
  const ctName = recase('content-type', plan.caseMode);
  if (plan.contentType === 'twice') {
    headers.push([ctName, 'application/json'], [ctName, 'application/json']);
  } else if (plan.contentType !== null) {
    headers.push([ctName, plan.contentType]);
  }
  for (const [n, v] of plan.extras) headers.push([n, resolve(v)]);
  const correct =
    kind === 'signed-device' ||
    kind === 'run' ||
    (kind === 'dead' && ctx.dead[plan.pick % ctx.dead.length]!.correctlySigned === true);
  return { method, path, headers, body: rendered, correctlySigned: correct };
}

/**
 * The store id of the nonce a request spends if its signature is correct: what a refused
 * signed request may leave behind (replay protection must not depend on the outcome).
 */
async function nonceIdOf(store: Store, sent: Sent): Promise<string | undefined> {
  const header = (name: string) =>
    sent.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
  const [nonce] = header('x-agentpack-nonce');
  if (nonce === undefined) return undefined;
  const [run] = header('x-agentpack-run');
  const [device] = header('x-agentpack-device-key');
  let keyId: string | undefined = run;
  if (keyId === undefined && device !== undefined && /^[\x21-\x7e]+$/.test(device)) {
    keyId = (await store.get('device_keys', deviceKeyDigest(device)))?.key_id;
  }
  if (keyId === undefined) return undefined;
  return createHash('sha256').update(`${keyId}\n${nonce}`).digest('base64url');
}

/** The header and claims of a bearer token, for failure reports. */
function decodeBearer(value: string): string {
  const m = /^bearer ([^.]*)\.([^.]*)/i.exec(value);
  if (m === null) return '';
  const part = (t: string) => {
    try {
      return Buffer.from(t, 'base64url').toString('utf8');
    } catch {
      return '?';
    }
  };
  return ` [${part(m[1]!)} ${part(m[2]!)}]`;
}

function describeSent(sent: Sent): string {
  const body = sent.body.toString('utf8');
  return `${sent.method} ${sent.path}\n${sent.headers
    .map(
      ([n, v]) =>
        `${n}: ${v.length > 120 ? `${v.slice(0, 120)}…(${v.length})` : v}${decodeBearer(v)}`,
    )
    .join('\n')}\n\n${body.length > 300 ? `${body.slice(0, 300)}…(${body.length} bytes)` : body}`;
}

/** Checks one reply against the contract; returns the problems found. */
function replyProblems(route: Route, kind: Kind, sent: Sent, reply: RawReply): string[] {
  const problems: string[] = [];
  if (reply.status === 0) return ['no HTTP answer'];
  if (reply.status >= 500) problems.push(`status ${reply.status}: ${reply.text}`);
  const ok = reply.status >= 200 && reply.status < 300;
  const contentType = reply.headers['content-type']?.[0] ?? '';
  if (!contentType.startsWith('application/json')) problems.push(`content-type ${contentType}`);
  if (ok) {
    if (typeof reply.body !== 'object' || reply.body === null || Array.isArray(reply.body)) {
      problems.push('a 2xx whose body is not a JSON object');
    }
    const caller = CALLER_KIND[kind];
    const callers = expectedCallers(route);
    if (callers !== 'none' && (caller === null || !callers.includes(caller))) {
      problems.push(`a ${kind} caller succeeded on ${route.path} (callers: ${callers})`);
    }
    if (sent.method !== route.method)
      problems.push(`${sent.method} succeeded on a ${route.method} route`);
  } else {
    const shape = errorShapeProblem(reply.status, reply.body);
    if (shape !== null) problems.push(`error body: ${shape}: ${reply.text.slice(0, 200)}`);
    if (reply.status === 401 && reply.headers['www-authenticate'] === undefined) {
      problems.push('401 without WWW-Authenticate');
    }
    if (reply.status === 405 && reply.headers['allow'] === undefined)
      problems.push('405 without Allow');
  }
  return problems;
}

const SEED = 20_261_123;

/** Runs per route and credential kind: more where the handler does real work. */
function numRuns(route: Route, kind: Kind): number {
  const callers = expectedCallers(route);
  if (callers === 'none') return route.method === 'GET' ? 12 : 40;
  const accepted = CALLER_KIND[kind] !== null && callers.includes(CALLER_KIND[kind]!);
  return accepted ? 60 : kind === 'dead' ? 30 : 20;
}

describe('fuzzing every route, body and headers, for every credential kind', () => {
  const stats = { requests: 0, ok: 0, refused: 0, byStatus: new Map<number, number>() };
  const seenDeviceKeys = new Set<string>();
  const logs: string[] = [];
  const tokens: string[] = [];

  it('covers every route of the table', () => {
    expect(ROUTES.length).toBeGreaterThanOrEqual(21);
    const bodiless = ['/secrets/list', '/settings/list', '/runs/complete'];
    for (const route of ROUTES) {
      if (route.method === 'POST' && !bodiless.includes(route.path)) {
        expect(fieldsOf(route).length, `fields of ${route.path}`).toBeGreaterThan(0);
      }
      for (const field of fieldsOf(route)) {
        // Every field has a plausible generator, so near-valid bodies reach the handlers.
        expect(
          FIELD_VALUES[`${route.path}:${field}`] ?? FIELD_VALUES[field],
          `${route.path} ${field}`,
        ).toBeDefined();
      }
    }
  });

  // One service per route, so each store stays small and a failure stays local.
  describe.each(ROUTES.map((route) => ({ route, path: route.path })))('$path', ({ route }) => {
    let svc: TestService;
    let ctx: Ctx;
    let state: Snapshot | null = null;
    beforeAll(async () => {
      skewClock.skewMs = 0;
      svc = await startTestService({ clock: skewClock });
      ctx = await setUpFixture(svc);
      tokens.push(ctx.tokenA);
    });
    afterAll(async () => {
      logs.push(...(svc?.logs ?? []));
      await svc?.close();
    });

    it.each([...KINDS])('credential: %s', async (kind) => {
      const routeIndex = ROUTES.indexOf(route);
      await fc.assert(
        fc.asyncProperty(headerPlan, bodyPlan(route), async (plan, body) => {
          // The state after the previous run is the state before this one, unless the fixture
          // had to be repaired (or nothing was taken yet).
          if ((await ensure(ctx)) || state === null) state = await snapshot(svc.store);
          const before = state;
          const sent = buildRequest(route, kind, plan, body, ctx);
          const nonceId = sent.correctlySigned ? await nonceIdOf(svc.store, sent) : undefined;
          const reply = await sendRaw(svc.url, sent);
          stats.requests++;
          stats.byStatus.set(reply.status, (stats.byStatus.get(reply.status) ?? 0) + 1);
          const problems = replyProblems(route, kind, sent, reply);
          const ok = reply.status >= 200 && reply.status < 300;
          state = await snapshot(svc.store);
          if (ok) {
            stats.ok++;
            if (typeof reply.body?.device_key === 'string')
              seenDeviceKeys.add(reply.body.device_key);
          } else {
            stats.refused++;
            const changed = forbiddenChanges(before, state, {
              ...(nonceId === undefined ? {} : { nonceId }),
              enrollMismatch: route.path === '/device/enroll' && reply.status === 409,
            });
            if (changed.length > 0)
              problems.push(`a refused request changed ${changed.join(', ')}`);
          }
          if (problems.length > 0) {
            throw new Error(`${problems.join('\n')}\n--- request ---\n${describeSent(sent)}`);
          }
        }),
        { seed: SEED + routeIndex * 31 + KINDS.indexOf(kind), numRuns: numRuns(route, kind) },
      );
    });
  });

  it('reached the handlers: both successes and refusals of many kinds', () => {
    expect(stats.requests).toBeGreaterThan(1000);
    expect(stats.ok).toBeGreaterThan(100);
    for (const status of [200, 201, 400, 401, 403, 404, 405, 409, 413, 415]) {
      expect(stats.byStatus.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
    }
  });

  it('never wrote a bridge key, device key or token into a log line, nor an error', () => {
    const text = logs.join('\n');
    expect(text.length).toBeGreaterThan(0);
    for (const key of [BRIDGE_KEY, BRIDGE_KEY_2, ...tokens, ...seenDeviceKeys]) {
      expect(text.includes(key)).toBe(false);
    }
    expect(logs.filter((l) => l.includes('"severity":"ERROR"'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// A value /secrets/put accepts must read back exactly (a secret value is a UTF-8 string).
// ---------------------------------------------------------------------------------------------

describe('secret values round-trip', () => {
  let svc: TestService;
  let key: string;
  beforeAll(async () => {
    svc = await startTestService();
    must(
      await svc.post('/agents/create', { agent_id: 'rt-agent', display_name: 'RT' }, svc.bridge),
      201,
      'create',
    );
    key = (await issueKey(svc, 'rt-agent'))[0];
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('reads back exactly what /secrets/put accepted, or refuses it', async () => {
    const value = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc
        .tuple(
          fc.string({ maxLength: 5 }),
          fc.integer({ min: 0xd800, max: 0xdfff }),
          fc.string({ maxLength: 5 }),
        )
        .map(([a, unit, b]) => `${a}${String.fromCharCode(unit)}${b}`),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(value, async (v) => {
        const name = `rt_${n++}`;
        const put = await svc.post('/secrets/put', { name, value: v }, svc.device(key));
        expect(put.status, put.text).toBeLessThan(500);
        if (put.status !== 200) return; // a refusal is fine; a silent change is not
        const got = await svc.post('/secrets/get', { name }, svc.device(key));
        expect(got.status).toBe(200);
        expect(
          got.body.value,
          `put ${JSON.stringify(v)} answered 200, get returned ${JSON.stringify(got.body.value)}`,
        ).toBe(v);
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Header edge cases, byte for byte.
// ---------------------------------------------------------------------------------------------

describe('header edge cases over raw HTTP', () => {
  let svc: TestService;
  let keyA: string;
  let keyB: string;
  let delegation: string;
  let token: string;
  let enrolled: { key: string; seed: Uint8Array };
  let run: { id: string; seed: Uint8Array };

  beforeAll(async () => {
    svc = await startTestService();
    for (const id of ['hd-agent-a', 'hd-agent-b']) {
      must(
        await svc.post('/agents/create', { agent_id: id, display_name: id }, svc.bridge),
        201,
        'create',
      );
    }
    keyA = (await issueKey(svc, 'hd-agent-a'))[0];
    keyB = (await issueKey(svc, 'hd-agent-b'))[0];
    delegation = must(
      await svc.post(
        '/delegate',
        { to_agent: 'hd-agent-a', scope: DELEGABLE, ttl_seconds: 600 },
        svc.device(keyB),
      ),
      201,
      'delegate',
    ).delegation_id;
    token = mintTestToken({ sub: 'hd-agent-a', scope: DELEGABLE, nowMs: Date.now() });
    const keys = generateDeviceKeys();
    const code = must(
      await svc.post('/device/enrollments/create', { agent_id: 'hd-agent-a' }, svc.bridge),
      201,
      'enrollment',
    ).code;
    enrolled = {
      key: must(
        await svc.post(
          '/device/enroll',
          {
            code,
            sealing_public_key: b64(keys.sealing.publicKey),
            signing_public_key: b64(keys.signing.publicKey),
          },
          {},
        ),
        201,
        'enroll',
      ).device_key,
      seed: keys.signing.privateKey,
    };
    const runKeys = generateDeviceKeys().signing;
    run = {
      id: must(
        await svc.post(
          '/runs/spawn',
          {
            task: 'headers',
            scope: DELEGABLE,
            ttl_seconds: 600,
            public_key: b64(runKeys.publicKey),
          },
          svc.device(keyA),
        ),
        201,
        'spawn',
      ).run_id,
      seed: runKeys.privateKey,
    };
  });
  afterAll(async () => {
    await svc?.close();
  });

  const json: [string, string] = ['content-type', 'application/json'];

  /** Sends, checks the answer is ours (JSON error, right code) or node's own 4xx, state kept. */
  async function send(
    spec: {
      path: string;
      method?: string;
      headers: Array<[string, string | Buffer]>;
      body?: string;
    },
    expected: { status: number; code?: string } | 'node-4xx',
  ): Promise<RawReply> {
    const before = await snapshot(svc.store);
    const reply = await sendRaw(svc.url, { body: '{}', ...spec });
    const what = `${spec.method ?? 'POST'} ${spec.path} ${spec.headers.map(([n]) => n).join(',')}`;
    expect(reply.status, `${what}: ${reply.text}`).toBeLessThan(500);
    if (expected === 'node-4xx') {
      expect([400, 431], what).toContain(reply.status);
    } else {
      expect(reply.status, `${what}: ${reply.text}`).toBe(expected.status);
      if (expected.code !== undefined) {
        expect(errorShapeProblem(reply.status, reply.body), what).toBeNull();
        expect(reply.body.error.code, what).toBe(expected.code);
      }
    }
    if (reply.status >= 400) {
      expect(changedParts(before, await snapshot(svc.store)), what).toEqual([]);
    }
    await stillUp();
    return reply;
  }

  /** The server still answers, and a real credential still works. */
  async function stillUp(): Promise<void> {
    const health = await sendRaw(svc.url, { method: 'GET', path: '/healthz', headers: [] });
    expect(health.status).toBe(200);
    const res = await svc.post('/agents/get', {}, svc.device(keyA));
    expect(res.status).toBe(200);
  }

  it('refuses every repeated credential header with 400, same value or not, whatever the case', async () => {
    const put = (headers: Array<[string, string]>) => ({
      path: '/secrets/put',
      headers: [json, ...headers],
      body: JSON.stringify({ name: 'hd_secret', value: 'v' }),
    });
    const repeats: Array<Array<[string, string]>> = [
      [
        ['x-agentpack-device-key', keyA],
        ['x-agentpack-device-key', keyA],
      ],
      [
        ['x-agentpack-device-key', keyA],
        ['X-Agentpack-Device-Key', keyB],
      ],
      [
        ['authorization', `Bearer ${token}`],
        ['Authorization', `Bearer ${token}`],
      ],
      [
        ['authorization', `Bearer ${token}`],
        ['AUTHORIZATION', 'Basic Zm9vOmJhcg=='],
      ],
      [
        ['x-agentpack-device-key', keyA],
        ['x-agentpack-delegation', delegation],
        ['X-AGENTPACK-DELEGATION', delegation],
      ],
      [
        ['authorization', `Bearer ${token}`],
        ['x-agentpack-delegation', delegation],
        ['x-agentpack-delegation', 'dg_AAAAAAAAAAAAAAAAAAAAAA'],
      ],
    ];
    for (const headers of repeats) {
      await send(put(headers), { status: 400, code: 'invalid_argument' });
    }
    // The run header and the signature headers, signed correctly, then one of them repeated.
    const body = JSON.stringify({ name: 'hd_secret', value: 'v' });
    const unsigned = { method: 'POST', path: '/secrets/put', body: Buffer.from(body) };
    for (const [credential, seed] of [
      [['x-agentpack-run', run.id], run.seed],
      [['x-agentpack-device-key', enrolled.key], enrolled.seed],
    ] as Array<[[string, string], Uint8Array]>) {
      const sig = signed(seed, unsigned, Date.now());
      for (let i = -1; i < sig.length; i++) {
        const headers: Array<[string, string]> = [credential, ...sig];
        headers.push(i === -1 ? [credential[0].toUpperCase(), credential[1]] : sig[i]!);
        await send(put(headers), { status: 400, code: 'invalid_argument' });
      }
    }
    for (const second of [BRIDGE_KEY, BRIDGE_KEY_2, 'garbage']) {
      await send(
        {
          path: '/agents/create',
          headers: [json, ['x-agentpack-key', BRIDGE_KEY], ['X-AgentPack-Key', second]],
          body: JSON.stringify({ display_name: 'never', agent_id: 'hd-never' }),
        },
        { status: 400, code: 'invalid_argument' },
      );
    }
    expect(await svc.store.get('agents', 'hd-never')).toBeNull();
    expect(await svc.store.get('secrets', 'hd-agent-a:hd_secret')).toBeNull();
  });

  it('answers 8 KiB headers by the rules and 64 KiB ones with a 4xx, and stays up', async () => {
    const k8 = 'k'.repeat(8 * 1024);
    const body = JSON.stringify({ agent_id: 'hd-agent-a' });
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-key', k8]], body },
      {
        status: 401,
        code: 'unauthenticated',
      },
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-device-key', k8]] },
      {
        status: 401,
        code: 'unauthenticated',
      },
    );
    await send(
      { path: '/agents/get', headers: [json, ['authorization', `Bearer ${k8}`]] },
      {
        status: 401,
        code: 'unauthenticated',
      },
    );
    await send(
      {
        path: '/agents/get',
        headers: [json, ['x-agentpack-device-key', keyA], ['x-agentpack-delegation', k8]],
      },
      { status: 403, code: 'permission_denied' },
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-run', k8]] },
      { status: 401, code: 'unauthenticated' },
    );
    const sig = signed(
      enrolled.seed,
      { method: 'POST', path: '/agents/get', body: Buffer.from('{}') },
      Date.now(),
    );
    for (let i = 0; i < sig.length; i++) {
      const long = sig.map(([n, v], j): [string, string] => [n, j === i ? k8 : v]);
      await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-device-key', enrolled.key], ...long] },
        { status: 401, code: 'unauthenticated' },
      );
    }
    // A long header that is not a credential changes nothing.
    const ok = await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-device-key', keyA], ['x-pad', k8]] },
      { status: 200 },
    );
    expect(ok.body.agent_id).toBe('hd-agent-a');
    const k64 = 'k'.repeat(64 * 1024);
    for (const name of ['x-agentpack-key', 'x-agentpack-device-key', 'authorization', 'x-pad']) {
      const reply = await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-device-key', keyA], [name, k64]] },
        'node-4xx',
      );
      expect(reply.status).toBe(431);
    }
    // Many small headers adding up past the limit.
    const many = Array.from({ length: 3000 }, (_, i): [string, string] => [`x-h${i}`, 'v']);
    expect(
      (await send({ path: '/healthz', method: 'GET', headers: many }, 'node-4xx')).status,
    ).toBe(431);
  });

  it('refuses credentials with latin1, UTF-8 or control bytes, never with a 5xx', async () => {
    const latin1 = Buffer.from([0x61, 0xe9, 0xff]);
    const utf8 = Buffer.from('\u00e9\u{1F600}', 'utf8');
    for (const bytes of [latin1, utf8]) {
      const withKey = (prefix: string) => Buffer.concat([Buffer.from(prefix, 'latin1'), bytes]);
      await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-key', withKey(BRIDGE_KEY)]] },
        { status: 401, code: 'unauthenticated' },
      );
      await send(
        { path: '/agents/get', headers: [json, ['x-agentpack-device-key', withKey(keyA)]] },
        { status: 401, code: 'unauthenticated' },
      );
      await send(
        { path: '/agents/get', headers: [json, ['authorization', withKey(`Bearer ${token}`)]] },
        { status: 401, code: 'unauthenticated' },
      );
      await send(
        {
          path: '/agents/get',
          headers: [json, ['x-agentpack-device-key', keyA], ['x-agentpack-delegation', bytes]],
        },
        { status: 403, code: 'permission_denied' },
      );
      await send(
        {
          path: '/agents/get',
          headers: [
            ['content-type', withKey('application/json; charset=')],
            ['x-agentpack-device-key', keyA],
          ],
        },
        { status: 415, code: 'unsupported_media_type' },
      );
      // Non-ASCII in a header that is not a credential is harmless.
      await send(
        {
          path: '/agents/get',
          headers: [json, ['x-agentpack-device-key', keyA], ['x-note', bytes]],
        },
        { status: 200 },
      );
    }
    // What is not HTTP is answered by node itself, and the server stays up.
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-key', Buffer.from([0x01, 0x41])]] },
      'node-4xx',
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpäck-key'.normalize('NFC'), BRIDGE_KEY]] },
      'node-4xx',
    );
    await send(
      { path: '/agents/get', headers: [json, ['x-agentpack-key', `${BRIDGE_KEY}\r\n continued`]] },
      'node-4xx',
    );
  });

  it('accepts credential and content-type header names in any case', async () => {
    const cases: Array<Array<[string, string]>> = [
      [['X-AgentPack-Device-Key', keyA]],
      [['X-AGENTPACK-DEVICE-KEY', keyA]],
      [['Authorization', `BEARER ${token}`]],
      [['authorization', `bearer ${token}`]],
      [
        ['x-AgentPack-device-KEY', keyA],
        ['X-Agentpack-Delegation', delegation],
      ],
    ];
    for (const headers of cases) {
      const reply = await send(
        { path: '/agents/get', headers: [['CONTENT-TYPE', 'Application/Json'], ...headers] },
        { status: 200 },
      );
      expect(reply.body.agent_id).toMatch(/^hd-agent-[ab]$/);
    }
    const bridge = await send(
      {
        path: '/agents/get',
        headers: [
          ['Content-Type', 'application/json'],
          ['X-AGENTPACK-KEY', BRIDGE_KEY],
        ],
        body: JSON.stringify({ agent_id: 'hd-agent-b' }),
      },
      { status: 200 },
    );
    expect(bridge.body.agent_id).toBe('hd-agent-b');
  });

  it('answers empty and whitespace credentials with 401, and a lone delegation with 401', async () => {
    for (const [name, value] of [
      ['x-agentpack-key', ''],
      ['x-agentpack-device-key', '   '],
      ['authorization', ''],
      ['authorization', 'Bearer'],
      ['authorization', 'Bearer  '],
      ['x-agentpack-delegation', delegation],
    ] as Array<[string, string]>) {
      await send(
        { path: '/agents/get', headers: [json, [name, value]] },
        { status: 401, code: 'unauthenticated' },
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Capture: a scripted session over every route and every kind of failure, on several services.
// Every log line and every response body is kept; then no secret may be where it does not
// belong.
// ---------------------------------------------------------------------------------------------

/** A keyring over a known KEK that remembers every data key it wraps or unwraps. */
function recordingKeyring(
  kek: Buffer,
  dataKeys: Buffer[],
  options: { failUnwrapFor?: string } = {},
): Keyring {
  const base = localKeyring(kek);
  return {
    primaryRef: () => base.primaryRef(),
    async wrap(dataKey, aad) {
      dataKeys.push(Buffer.from(dataKey));
      return base.wrap(dataKey, aad);
    },
    async unwrap(wrapped, kekRef, aad) {
      if (
        options.failUnwrapFor !== undefined &&
        aad.toString('utf8').includes(options.failUnwrapFor)
      ) {
        throw new Error('key service unavailable (injected)');
      }
      const key = await base.unwrap(wrapped, kekRef, aad);
      dataKeys.push(Buffer.from(key));
      return key;
    },
  };
}

/** The ways a 32-byte key could be written out. */
function encodings(bytes: Buffer): string[] {
  return [bytes.toString('base64url'), bytes.toString('base64'), bytes.toString('hex')];
}

interface Capture {
  logs: string[];
  /** Enrollment codes: shown once, by the response that created them. */
  codes: string[];
  /** Private keys of devices and runs: never sent anywhere. */
  privateKeys: Uint8Array[];
  /** Every response body, with what it answered. */
  responses: Array<{ what: string; status: number; text: string }>;
  deviceKeys: string[];
  tokens: string[];
  values: string[];
  dataKeys: Buffer[];
  keks: Buffer[];
  dataDirs: string[];
  stores: Store[];
}

describe('capture: no key, data key or secret value where it does not belong', () => {
  const capture: Capture = {
    logs: [],
    codes: [],
    privateKeys: [],
    responses: [],
    deviceKeys: [],
    tokens: [],
    values: [],
    dataKeys: [],
    keks: [],
    dataDirs: [],
    stores: [],
  };
  const services: TestService[] = [];

  afterAll(async () => {
    for (const svc of services) await svc.close();
  });

  /** One scripted session: every route, success and failure, on a fresh service. */
  async function session(variant: 'plain' | 'clock' | 'pruning', n: number): Promise<void> {
    const clock: ManualClock | undefined =
      variant === 'clock' ? manualClock(Date.now()) : undefined;
    const kek = randomBytes(32);
    capture.keks.push(kek);
    const svc = await startTestService({
      ...(clock === undefined ? {} : { clock }),
      keyring: recordingKeyring(kek, capture.dataKeys, { failUnwrapFor: '\nboom\n' }),
    });
    services.push(svc);
    capture.dataDirs.push(svc.dataDir);
    capture.stores.push(svc.store);
    const nowMs = () => clock?.now() ?? Date.now();
    const secretValue = (label: string) => {
      const v = `sv-${variant}-${label}-${randomBytes(12).toString('hex')}`;
      capture.values.push(v);
      return v;
    };

    const call = async (
      what: string,
      path: string,
      body: unknown,
      headers: Record<string, string>,
      status: number,
    ) => {
      const res = await svc.post(path, body, headers);
      capture.responses.push({ what: `${variant}: ${what}`, status: res.status, text: res.text });
      expect(res.status, `${variant}: ${what}: ${res.text}`).toBe(status);
      return res.body;
    };
    const raw = async (what: string, spec: Parameters<typeof sendRaw>[1], status: number) => {
      const reply = await sendRaw(svc.url, spec);
      capture.responses.push({
        what: `${variant}: ${what}`,
        status: reply.status,
        text: reply.text,
      });
      expect(reply.status, `${variant}: ${what}: ${reply.text}`).toBe(status);
      return reply;
    };
    const B = svc.bridge;
    const D = (key: string) => svc.device(key);
    const a = `cap-a-${n}`;
    const b = `cap-b-${n}`;
    const c = `cap-c-${n}`;

    // Agents.
    for (const id of [a, b, c])
      await call('create', '/agents/create', { display_name: id, agent_id: id }, B, 201);
    await call('create again', '/agents/create', { display_name: 'x', agent_id: a }, B, 409);
    await call('create generated id', '/agents/create', { display_name: 'generated' }, B, 201);
    await call('create bad id', '/agents/create', { display_name: 'x', agent_id: 'A!' }, B, 400);
    await call(
      'create wrong bridge',
      '/agents/create',
      { display_name: 'x' },
      { 'x-agentpack-key': `${BRIDGE_KEY}x` },
      401,
    );
    await call(
      'create second bridge key',
      '/agents/create',
      { display_name: 'x' },
      { 'x-agentpack-key': BRIDGE_KEY_2 },
      201,
    );

    // Device keys.
    const issue = async (agent: string, extra: object = {}) => {
      const body = await call(
        'issue',
        '/device/issue',
        { agent_id: agent, label: 'laptop', ...extra },
        B,
        201,
      );
      capture.deviceKeys.push(body.device_key);
      return body as { device_key: string; key_id: string };
    };
    const ka = await issue(a);
    const kb = await issue(b);
    const kc = await issue(c);
    const ka2 = await issue(a, { ttl_seconds: 60 });
    const self = await call(
      'issue self',
      '/device/issue',
      { label: 'self' },
      D(ka.device_key),
      201,
    );
    capture.deviceKeys.push(self.device_key);
    const rotated = await call(
      'rotate',
      '/device/issue',
      { rotate: true },
      D(self.device_key),
      201,
    );
    capture.deviceKeys.push(rotated.device_key);
    await call('use rotated-away key', '/agents/get', {}, D(self.device_key), 401);
    await call('rotate with bridge', '/device/issue', { agent_id: a, rotate: true }, B, 400);
    await call('issue unknown agent', '/device/issue', { agent_id: `cap-none-${n}` }, B, 404);
    await call(
      'issue ttl too long',
      '/device/issue',
      { agent_id: a, ttl_seconds: 10 ** 9 },
      B,
      400,
    );
    await call('issue no agent_id', '/device/issue', {}, B, 400);
    await call(
      'issue for another agent (ignored agent_id)',
      '/device/issue',
      { agent_id: b },
      D(kc.device_key),
      201,
    ).then((body) => {
      capture.deviceKeys.push(body.device_key);
      expect(body.agent_id).toBe(c);
    });
    await call(
      'revoke other agent key',
      '/device/revoke',
      { key_id: kb.key_id },
      D(ka.device_key),
      404,
    );
    await call('revoke self', '/device/revoke', {}, D(rotated.device_key), 200);
    await call('revoke by bridge', '/device/revoke', { key_id: ka2.key_id }, B, 200);
    await call('revoke again', '/device/revoke', { key_id: ka2.key_id }, B, 200);
    await call('revoke bridge without key_id', '/device/revoke', {}, B, 400);
    await call('use revoked', '/agents/get', {}, D(ka2.device_key), 401);
    await call('unknown well-formed key', '/agents/get', {}, D(generateDeviceKey()), 401);
    await call('truncated key', '/agents/get', {}, D(ka.device_key.slice(0, -1)), 401);
    await call('agents/get self', '/agents/get', { agent_id: b }, D(ka.device_key), 200);
    await call('agents/get bridge', '/agents/get', { agent_id: b }, B, 200);
    await call('agents/get bridge missing', '/agents/get', { agent_id: `cap-none-${n}` }, B, 404);

    // Credentials pasted in the wrong places: refused, never echoed.
    await call(
      'key as unknown field',
      '/agents/create',
      { display_name: 'x', [ka.device_key]: 1 },
      B,
      400,
    );
    await call(
      'key in display_name with control',
      '/agents/create',
      { display_name: `${ka.device_key}\u0000` },
      B,
      400,
    );
    await call('device key as agent_id', '/agents/get', { agent_id: ka.device_key }, B, 400);
    await call('key as key_id', '/device/revoke', { key_id: ka.device_key }, B, 400);
    await call(
      'key as label of wrong type',
      '/device/issue',
      { agent_id: a, label: [ka.device_key] },
      B,
      400,
    );
    await call(
      'key as delegation_id',
      '/delegate/revoke',
      { delegation_id: kb.device_key },
      B,
      400,
    );
    await call(
      'key as bad ref',
      '/secrets/resolve',
      { refs: [`agentpack.secret://${ka.device_key}`] },
      D(ka.device_key),
      400,
    );
    await call('bridge as device key', '/agents/get', {}, D(BRIDGE_KEY), 401);
    await call(
      'device key as bridge key',
      '/agents/get',
      { agent_id: a },
      { 'x-agentpack-key': ka.device_key },
      401,
    );
    await call('device key as bearer', '/agents/get', {}, bearer(ka.device_key), 401);
    await call('bridge + device', '/agents/get', {}, { ...B, ...D(ka.device_key) }, 400);
    await call(
      'settings/set bridge key value',
      '/settings/set',
      { key: 'secrets.max_versions', value: BRIDGE_KEY },
      B,
      400,
    );
    await call(
      'settings/set unknown key',
      '/settings/set',
      { key: ka.device_key, value: 1 },
      B,
      400,
    );

    // Tokens.
    const token = mintTestToken({
      sub: a,
      scope: [...DELEGABLE, 'delegate', 'delegate/revoke'],
      nowMs: nowMs(),
    });
    const narrow = mintTestToken({ sub: a, scope: ['secrets/get:only_this'], nowMs: nowMs() });
    const short = mintTestToken({ sub: a, scope: DELEGABLE, nowMs: nowMs(), ttlSeconds: 60 });
    capture.tokens.push(token, narrow, short);
    await call('token agents/get', '/agents/get', {}, bearer(token), 200);
    await call('token out of scope', '/secrets/get', { name: 'api_key' }, bearer(narrow), 403);
    await call('tampered token', '/agents/get', {}, bearer(`${token}x`), 401);
    await call('token + device', '/agents/get', {}, { ...bearer(token), ...D(ka.device_key) }, 400);
    await call(
      'token on bridge route',
      '/agents/create',
      { display_name: 'x' },
      bearer(token),
      403,
    );
    const [, payload] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
    await call(
      'tokens/register',
      '/tokens/register',
      {
        jti: claims.jti,
        sub: a,
        scope: claims.scope,
        iat: claims.iat,
        exp: claims.exp,
        kid: 'test-key-1',
      },
      B,
      201,
    );
    await call(
      'tokens/register again',
      '/tokens/register',
      {
        jti: claims.jti,
        sub: a,
        scope: claims.scope,
        iat: claims.iat,
        exp: claims.exp,
        kid: 'test-key-1',
      },
      B,
      409,
    );
    await call(
      'tokens/register the token itself as jti',
      '/tokens/register',
      { jti: token, sub: a, scope: ['agents/get'], iat: 1, exp: 2, kid: 'k' },
      B,
      400,
    );

    // Secrets.
    const v1 = secretValue('api-1');
    const v2 = secretValue('api-2');
    const v3 = secretValue('api-3');
    await call(
      'put',
      '/secrets/put',
      { name: 'api_key', value: v1, cas: 0 },
      D(ka.device_key),
      200,
    );
    await call(
      'put cas mismatch',
      '/secrets/put',
      { name: 'api_key', value: secretValue('lost'), cas: 0 },
      D(ka.device_key),
      409,
    );
    await call(
      'put v2 by token',
      '/secrets/put',
      { name: 'api_key', value: v2, cas: 1 },
      bearer(token),
      200,
    );
    await call('put v3', '/secrets/put', { name: 'api_key', value: v3 }, D(ka.device_key), 200);
    await call(
      'put too big',
      '/secrets/put',
      { name: 'api_key', value: `${secretValue('big')}${'x'.repeat(33 * 1024)}` },
      D(ka.device_key),
      400,
    );
    await call(
      'put bad name',
      '/secrets/put',
      { name: 'bad name', value: secretValue('badname') },
      D(ka.device_key),
      400,
    );
    await call(
      'put unknown field',
      '/secrets/put',
      { name: 'api_key', value: secretValue('unknown'), extra: true },
      D(ka.device_key),
      400,
    );
    await call(
      'put bridge',
      '/secrets/put',
      { name: 'api_key', value: secretValue('bridge') },
      B,
      403,
    );
    const got = await call('get', '/secrets/get', { name: 'api_key' }, D(ka.device_key), 200);
    expect(got.value).toBe(v3);
    let latest = v3;
    await call(
      'get v1 by token',
      '/secrets/get',
      { name: 'api_key', version: 1 },
      bearer(token),
      200,
    );
    await call(
      'get missing version',
      '/secrets/get',
      { name: 'api_key', version: 9 },
      D(ka.device_key),
      404,
    );
    await call(
      'get other agent (by name, own namespace)',
      '/secrets/get',
      { name: 'api_key' },
      D(kb.device_key),
      404,
    );
    await call('list', '/secrets/list', {}, D(ka.device_key), 200);
    await call('metadata', '/secrets/metadata', { name: 'api_key' }, D(ka.device_key), 200);
    await call('metadata missing', '/secrets/metadata', { name: 'nope' }, D(ka.device_key), 404);
    await call(
      'delete v2',
      '/secrets/delete',
      { name: 'api_key', versions: [2] },
      D(ka.device_key),
      200,
    );
    await call(
      'get deleted',
      '/secrets/get',
      { name: 'api_key', version: 2 },
      D(ka.device_key),
      404,
    );
    await call(
      'undelete v2',
      '/secrets/undelete',
      { name: 'api_key', versions: [2] },
      D(ka.device_key),
      200,
    );
    await call(
      'destroy v1',
      '/secrets/destroy',
      { name: 'api_key', versions: [1] },
      D(ka.device_key),
      200,
    );
    await call(
      'get destroyed',
      '/secrets/get',
      { name: 'api_key', version: 1 },
      D(ka.device_key),
      404,
    );
    await call(
      'undelete destroyed',
      '/secrets/undelete',
      { name: 'api_key', versions: [1] },
      D(ka.device_key),
      409,
    );
    await call(
      'destroy missing version',
      '/secrets/destroy',
      { name: 'api_key', versions: [42] },
      D(ka.device_key),
      404,
    );
    const ref = (agent: string, name: string, version?: number) =>
      `agentpack.secret://${agent}/${name}${version === undefined ? '' : `#${version}`}`;
    await call(
      'resolve',
      '/secrets/resolve',
      { refs: [ref(a, 'api_key'), ref(a, 'api_key', 2)] },
      D(ka.device_key),
      200,
    );
    const vb = secretValue('b-own');
    await call('put b', '/secrets/put', { name: 'b_own', value: vb }, D(kb.device_key), 200);
    await call(
      'resolve other agent',
      '/secrets/resolve',
      { refs: [ref(a, 'api_key'), ref(b, 'b_own')] },
      D(ka.device_key),
      403,
    );
    await call(
      'resolve missing',
      '/secrets/resolve',
      { refs: [ref(a, 'api_key'), ref(a, 'nope')] },
      D(ka.device_key),
      404,
    );
    const vboom = secretValue('boom');
    await call('put boom', '/secrets/put', { name: 'boom', value: vboom }, D(ka.device_key), 200);
    const boom = await call(
      'get with a failing key service',
      '/secrets/get',
      { name: 'boom' },
      D(ka.device_key),
      500,
    );
    expect(boom).toEqual({ error: { code: 'internal', message: 'internal error' } });

    // Delegations.
    const dg = await call(
      'delegate',
      '/delegate',
      {
        to_agent: b,
        scope: ['secrets/get:api_key', 'agents/get', 'secrets/resolve'],
        ttl_seconds: 60,
      },
      D(ka.device_key),
      201,
    );
    const dgHeaders = { ...D(kb.device_key), 'x-agentpack-delegation': dg.delegation_id };
    const delegated = await call(
      'delegated get',
      '/secrets/get',
      { name: 'api_key' },
      dgHeaders,
      200,
    );
    expect(delegated.value).toBe(v3);
    await call(
      'delegated out of scope',
      '/secrets/put',
      { name: 'api_key', value: secretValue('scope') },
      dgHeaders,
      403,
    );
    await call(
      'delegated delegate',
      '/delegate',
      { to_agent: c, scope: ['agents/get'], ttl_seconds: 60 },
      dgHeaders,
      403,
    );
    await call(
      'delegation by bystander',
      '/agents/get',
      {},
      { ...D(kc.device_key), 'x-agentpack-delegation': dg.delegation_id },
      403,
    );
    await call(
      'delegation with bridge',
      '/agents/get',
      { agent_id: a },
      { ...B, 'x-agentpack-delegation': dg.delegation_id },
      400,
    );
    await call(
      'delegate to self',
      '/delegate',
      { to_agent: a, scope: ['agents/get'], ttl_seconds: 60 },
      D(ka.device_key),
      400,
    );
    await call(
      'delegate to unknown',
      '/delegate',
      { to_agent: `cap-none-${n}`, scope: ['agents/get'], ttl_seconds: 60 },
      D(ka.device_key),
      404,
    );
    await call(
      'delegate the delegate rpc',
      '/delegate',
      { to_agent: b, scope: ['delegate'], ttl_seconds: 60 },
      D(ka.device_key),
      400,
    );
    await call(
      'delegate by token',
      '/delegate',
      { to_agent: c, scope: ['agents/get'], ttl_seconds: 60 },
      bearer(token),
      201,
    );
    await call(
      'revoke delegation by bystander',
      '/delegate/revoke',
      { delegation_id: dg.delegation_id },
      D(kc.device_key),
      404,
    );
    const dg2 = await call(
      'delegate 2',
      '/delegate',
      { to_agent: b, scope: ['agents/get'], ttl_seconds: 60 },
      D(ka.device_key),
      201,
    );
    await call(
      'revoke delegation by delegate',
      '/delegate/revoke',
      { delegation_id: dg2.delegation_id },
      D(kb.device_key),
      200,
    );
    await call(
      'use revoked delegation',
      '/agents/get',
      {},
      { ...D(kb.device_key), 'x-agentpack-delegation': dg2.delegation_id },
      403,
    );

    // Settings and public documents.
    await call('settings/list', '/settings/list', {}, B, 200);
    await call('settings/list by device', '/settings/list', {}, D(ka.device_key), 403);
    if (variant === 'pruning') {
      await call(
        'settings/set',
        '/settings/set',
        { key: 'secrets.max_versions', value: 1 },
        B,
        200,
      );
      await call(
        'put after lowering',
        '/secrets/put',
        { name: 'api_key', value: (latest = secretValue('pruned-to-one')) },
        D(ka.device_key),
        200,
      );
      await call(
        'get pruned',
        '/secrets/get',
        { name: 'api_key', version: 3 },
        D(ka.device_key),
        404,
      );
    }
    await call(
      'settings/set out of bounds',
      '/settings/set',
      { key: 'secrets.max_versions', value: 0 },
      B,
      400,
    );
    const wk = await svc.request('/.well-known/agentpack-identity', { method: 'GET' });
    capture.responses.push({ what: `${variant}: well-known`, status: wk.status, text: wk.text });
    expect(wk.status).toBe(200);
    const hz = await svc.request('/healthz', { method: 'GET' });
    capture.responses.push({ what: `${variant}: healthz`, status: hz.status, text: hz.text });
    expect(hz.status).toBe(200);

    // Transport-level refusals.
    await call('no route', '/agents/nope', {}, B, 404);
    const m = await svc.request('/agents/create', { method: 'PUT', headers: B });
    capture.responses.push({ what: `${variant}: 405`, status: m.status, text: m.text });
    expect(m.status).toBe(405);
    await call(
      'too large',
      '/secrets/put',
      `{"name":"api_key","value":"${secretValue('huge')}${'x'.repeat(70_000)}"}`,
      D(ka.device_key),
      413,
    );
    await call(
      'bad json',
      '/secrets/put',
      `{"name":"api_key","value":"${secretValue('badjson')}"`,
      D(ka.device_key),
      400,
    );
    await raw(
      'bad content-type',
      {
        path: '/secrets/put',
        headers: [
          ['content-type', 'text/plain'],
          ['x-agentpack-device-key', ka.device_key],
        ],
        body: JSON.stringify({ name: 'api_key', value: secretValue('ct') }),
      },
      415,
    );
    await raw(
      'bad utf-8',
      {
        path: '/secrets/put',
        headers: [
          ['content-type', 'application/json'],
          ['x-agentpack-device-key', ka.device_key],
        ],
        body: Buffer.concat([
          Buffer.from(`{"name":"api_key","value":"${secretValue('utf8')}`),
          Buffer.from([0xc3, 0x28]),
          Buffer.from('"}'),
        ]),
      },
      400,
    );
    await raw(
      'repeated device key',
      {
        path: '/secrets/get',
        headers: [
          ['content-type', 'application/json'],
          ['x-agentpack-device-key', ka.device_key],
          ['x-agentpack-device-key', kb.device_key],
        ],
        body: '{"name":"api_key"}',
      },
      400,
    );
    await raw(
      'repeated bridge key',
      {
        path: '/agents/get',
        headers: [
          ['content-type', 'application/json'],
          ['x-agentpack-key', BRIDGE_KEY],
          ['X-Agentpack-Key', BRIDGE_KEY_2],
        ],
        body: `{"agent_id":"${a}"}`,
      },
      400,
    );

    // Enrolled devices: codes, enrollment, signed requests, sealed reads, attestations.
    const enrollment = await call(
      'enrollment',
      '/device/enrollments/create',
      { agent_id: a, label: 'enrolled' },
      B,
      201,
    );
    const guarded = await call(
      'enrollment with an expected fingerprint',
      '/device/enrollments/create',
      { agent_id: a, expected_fingerprint: `SHA256:${'A'.repeat(43)}` },
      B,
      201,
    );
    capture.codes.push(enrollment.code, guarded.code);
    const devKeys = generateDeviceKeys();
    capture.privateKeys.push(devKeys.signing.privateKey, devKeys.sealing.privateKey);
    const enrollBody = {
      code: enrollment.code,
      sealing_public_key: b64(devKeys.sealing.publicKey),
      signing_public_key: b64(devKeys.signing.publicKey),
    };
    await call(
      'enroll, fingerprint mismatch',
      '/device/enroll',
      { ...enrollBody, code: guarded.code },
      {},
      409,
    );
    await call(
      'enroll, small-order key',
      '/device/enroll',
      { ...enrollBody, sealing_public_key: b64(Buffer.alloc(32)) },
      {},
      400,
    );
    await call(
      'enroll, unknown code',
      '/device/enroll',
      { ...enrollBody, code: `apen_${randomBytes(32).toString('base64url')}` },
      {},
      401,
    );
    await call(
      'enroll, code as a header',
      '/device/enroll',
      { ...enrollBody, code: 'x' },
      { 'x-agentpack-key': enrollment.code },
      401,
    );
    const enrolled = await call('enroll', '/device/enroll', enrollBody, {}, 201);
    capture.deviceKeys.push(enrolled.device_key);
    await call('enroll, code reused', '/device/enroll', enrollBody, {}, 401);
    const signedCall = async (
      what: string,
      path: string,
      body: unknown,
      credential: [string, string],
      seed: Uint8Array,
      status: number,
      at = nowMs(),
    ) => {
      const raw = Buffer.from(JSON.stringify(body));
      const headers = {
        'content-type': 'application/json',
        [credential[0]]: credential[1],
        ...signRequest({ method: 'POST', path, body: raw, signingSeed: seed, nowMs: at }),
      };
      const send = async (label: string, expected: number) => {
        const res = await svc.request(path, { method: 'POST', headers, body: raw });
        capture.responses.push({
          what: `${variant}: ${label}`,
          status: res.status,
          text: res.text,
        });
        expect(res.status, `${variant}: ${label}: ${res.text}`).toBe(expected);
        return res.body;
      };
      const first = await send(what, status);
      if (status === 200) await send(`${what}, replayed`, 401);
      return first;
    };
    const asDevice: [string, string] = ['x-agentpack-device-key', enrolled.device_key];
    const seed = devKeys.signing.privateKey;
    const signedGet = await signedCall(
      'signed get',
      '/secrets/get',
      { name: 'api_key' },
      asDevice,
      seed,
      200,
    );
    expect(signedGet.value).toBe(latest);
    const sealed = await signedCall(
      'sealed get',
      '/secrets/get',
      { name: 'api_key', seal: true },
      asDevice,
      seed,
      200,
    );
    expect(sealed.value).toBeUndefined();
    expect(typeof sealed.sealed).toBe('string');
    await signedCall(
      'sealed resolve',
      '/secrets/resolve',
      { refs: [ref(a, 'api_key')], seal: true },
      asDevice,
      seed,
      200,
    );
    await signedCall(
      'stale signature',
      '/secrets/get',
      { name: 'api_key' },
      asDevice,
      seed,
      401,
      nowMs() - 120_000,
    );
    await signedCall(
      'signature by another key',
      '/secrets/get',
      { name: 'api_key' },
      asDevice,
      generateDeviceKeys().signing.privateKey,
      401,
    );
    await call(
      'sealed read with a plain device key',
      '/secrets/get',
      { name: 'api_key', seal: true },
      D(ka.device_key),
      403,
    );
    await call(
      'require sealed',
      '/settings/set',
      { key: 'secrets.require_sealed', value: true },
      B,
      200,
    );
    await call(
      'clear read under require_sealed',
      '/secrets/get',
      { name: 'api_key' },
      D(enrolled.device_key),
      403,
    );
    await call(
      'token read under require_sealed',
      '/secrets/get',
      { name: 'api_key' },
      bearer(token),
      403,
    );
    await call(
      'sealed read under require_sealed',
      '/secrets/get',
      { name: 'api_key', seal: true },
      D(enrolled.device_key),
      200,
    );
    await call(
      'require sealed off',
      '/settings/set',
      { key: 'secrets.require_sealed', value: false },
      B,
      200,
    );
    const job = {
      job_id: `job-${n}`,
      input_sha256: 'a'.repeat(64),
      output_sha256: 'b'.repeat(64),
      rc: 0,
    };
    const attestation = signAttestation(job, seed);
    const verified = await call(
      'attestation',
      '/attestations/verify',
      { key_id: enrolled.key_id, ...job, signature: attestation },
      B,
      200,
    );
    expect(verified.valid).toBe(true);
    const tampered = await call(
      'tampered attestation',
      '/attestations/verify',
      { key_id: enrolled.key_id, ...job, rc: 1, signature: attestation },
      D(kb.device_key),
      200,
    );
    expect(tampered.valid).toBe(false);
    await call(
      'attestation, unknown key',
      '/attestations/verify',
      { key_id: 'dk_AAAAAAAAAAAAAAAA', ...job, signature: attestation },
      D(ka.device_key),
      404,
    );

    // Runs: spawn, act within scope, children, complete, revoke, the public document.
    const runKeys = generateDeviceKeys().signing;
    const childKeys = generateDeviceKeys().signing;
    capture.privateKeys.push(runKeys.privateKey, childKeys.privateKey);
    const root = await call(
      'spawn',
      '/runs/spawn',
      {
        task: 'summarise',
        scope: ['secrets/get:api_key', 'runs/spawn'],
        ttl_seconds: 300,
        public_key: b64(runKeys.publicKey),
      },
      D(ka.device_key),
      201,
    );
    const asRoot: [string, string] = ['x-agentpack-run', root.run_id];
    const runRead = await signedCall(
      'run get',
      '/secrets/get',
      { name: 'api_key' },
      asRoot,
      runKeys.privateKey,
      200,
    );
    expect(runRead.value).toBe(latest);
    await signedCall(
      'run out of scope',
      '/secrets/put',
      { name: 'api_key', value: secretValue('run-put') },
      asRoot,
      runKeys.privateKey,
      403,
    );
    await call(
      'run without a signature',
      '/agents/get',
      {},
      { 'x-agentpack-run': root.run_id },
      401,
    );
    await call(
      'spawn, key reused',
      '/runs/spawn',
      { task: 'again', scope: ['agents/get'], ttl_seconds: 60, public_key: b64(runKeys.publicKey) },
      D(ka.device_key),
      409,
    );
    await call(
      'spawn, delegated',
      '/runs/spawn',
      {
        task: 'x',
        scope: ['agents/get'],
        ttl_seconds: 60,
        public_key: b64(generateDeviceKeys().signing.publicKey),
      },
      dgHeaders,
      403,
    );
    const child = await signedCall(
      'spawn child',
      '/runs/spawn',
      {
        task: 'child',
        scope: ['secrets/get:api_key'],
        ttl_seconds: 60,
        public_key: b64(childKeys.publicKey),
      },
      asRoot,
      runKeys.privateKey,
      201,
    );
    await signedCall(
      'spawn child wider',
      '/runs/spawn',
      {
        task: 'child',
        scope: ['secrets/put'],
        ttl_seconds: 60,
        public_key: b64(generateDeviceKeys().signing.publicKey),
      },
      asRoot,
      runKeys.privateKey,
      403,
    );
    const doc = await svc.request(`/.well-known/agentpack-agent-identity/${child.run_id}`, {
      method: 'GET',
    });
    capture.responses.push({
      what: `${variant}: run well-known`,
      status: doc.status,
      text: doc.text,
    });
    expect(doc.body.status).toBe('active');
    await signedCall(
      'complete child',
      '/runs/complete',
      {},
      ['x-agentpack-run', child.run_id],
      childKeys.privateKey,
      200,
    );
    await signedCall(
      'completed child',
      '/agents/get',
      {},
      ['x-agentpack-run', child.run_id],
      childKeys.privateKey,
      401,
    );
    await call('revoke root', '/runs/revoke', { run_id: root.run_id }, B, 200);
    await signedCall('revoked root', '/agents/get', {}, asRoot, runKeys.privateKey, 401);
    await call(
      'revoke unknown run',
      '/runs/revoke',
      { run_id: `run_${'A'.repeat(22)}` },
      D(ka.device_key),
      404,
    );

    // Disable: every credential of the agent stops.
    await call('disable', '/agents/disable', { agent_id: a }, B, 200);
    await call('device of disabled', '/agents/get', {}, D(ka.device_key), 403);
    await call('token of disabled', '/agents/get', {}, bearer(token), 403);
    await call('delegation from disabled', '/secrets/get', { name: 'api_key' }, dgHeaders, 403);
    await call('issue to disabled', '/device/issue', { agent_id: a }, B, 403);
    await call(
      'delegate to disabled',
      '/delegate',
      { to_agent: a, scope: ['agents/get'], ttl_seconds: 60 },
      D(kb.device_key),
      409,
    );
    await call('enable', '/agents/enable', { agent_id: a }, B, 200);
    await call('device again', '/agents/get', {}, D(ka.device_key), 200);

    // Expiry, on the frozen clock.
    if (clock !== undefined) {
      clock.advance(61_000);
      await call('expired key', '/agents/get', {}, D(ka2.device_key), 401);
      await call('expired delegation', '/secrets/get', { name: 'api_key' }, dgHeaders, 403);
      clock.advance(60_000);
      await call('expired token', '/agents/get', {}, bearer(short), 401);
    }
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

  it('shows a device key only in the response that issued it, and never a bridge key, token, data key or KEK', () => {
    for (const key of capture.deviceKeys) {
      const shown = capture.responses.filter((r) => r.text.includes(key));
      expect(
        shown.map((r) => r.what),
        key.slice(0, 9),
      ).toHaveLength(1);
      expect(shown[0]!.status).toBe(201);
      expect(JSON.parse(shown[0]!.text).device_key).toBe(key);
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
