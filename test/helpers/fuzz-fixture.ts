/**
 * The fixture the fuzzer acts on: agents, their keys, an enrolled device, a run, a delegation,
 * a token, enrollment codes, some secrets. A successful fuzzed request may revoke a key,
 * disable an agent, end the run or use a code; `ensure` repairs the fixture before the next
 * run so every credential kind stays meaningful.
 */
import { createHash, randomBytes } from 'node:crypto';
import { generateDeviceKey } from '@agentpack-identity/protocol';
import type { Digester } from '../../functions/src/core/digest.js';
import { generateDeviceKeys } from '@agentpack-identity/protocol';
import type { Store } from '../../functions/src/ports/store.js';
import {
  DELEGABLE,
  b64,
  issueKey,
  must,
  signed,
  skewClock,
  type Seed,
  type Unsigned,
} from './fuzz-calls.js';
import { sendRaw } from './raw-client.js';
import { openEnrolledKey } from './sealed-enrollment.js';
import { BRIDGE_KEY, BRIDGE_KEY_2, type TestService } from './service.js';
import { mintTestToken } from './tokens.js';

export const AGENT_A = 'fz-agent-a';
export const AGENT_B = 'fz-agent-b';
export const AGENT_C = 'fz-agent-c'; // disabled for good; only retire names it (it stays disabled)
export const RUN_SCOPE = [...DELEGABLE, 'runs/spawn'];

/** Settings a fuzzed bridge call may change that would starve whole credential kinds. */
const RESET_SETTINGS: Record<string, unknown> = {
  'secrets.require_sealed': false,
  'device.require_signed_requests': false,
  'delegation.max_ttl_seconds': 3600,
  'runs.max_ttl_seconds': 900,
  'runs.max_depth': 4,
};

export interface Ctx {
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
export type DeadCredential = ((sent: Unsigned) => Array<[string, string]>) & {
  correctlySigned?: boolean;
};

function correctlySigned(make: (sent: Unsigned) => Array<[string, string]>): DeadCredential {
  return Object.assign(make, { correctlySigned: true });
}

async function keyActive(store: Store, digest: Digester, key: string): Promise<boolean> {
  const doc = await store.get('device_keys', digest('device_key', key));
  return (
    doc !== null &&
    doc.revoked_at === null &&
    (doc.expires_at === null || Date.parse(doc.expires_at) > Date.now() + 60_000)
  );
}

function seedOf(keys: ReturnType<typeof generateDeviceKeys>): Seed {
  return keys.signing.privateKey;
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
  return { key: openEnrolledKey(body, keys.sealing), keyId: body.key_id, seed: seedOf(keys) };
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

export async function setUpFixture(svc: TestService): Promise<Ctx> {
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
export async function ensure(ctx: Ctx): Promise<boolean> {
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
  if (!(await keyActive(svc.store, svc.digest, ctx.keyA)))
    [ctx.keyA, ctx.keyAId] = await issueKey(svc, AGENT_A);
  if (!(await keyActive(svc.store, svc.digest, ctx.keyB)))
    [ctx.keyB, ctx.keyBId] = await issueKey(svc, AGENT_B);
  if (!(await keyActive(svc.store, svc.digest, ctx.enrolled.key)))
    ctx.enrolled = await enrollDevice(svc);
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
