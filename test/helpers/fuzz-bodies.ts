/**
 * Request bodies for a route, from its own schema: valid against the fixture, clean, mutated, or
 * not JSON at all; and their rendering to bytes.
 */
import fc from 'fast-check';
import type { Route } from '../../functions/src/routes/route.js';
import { DELEGABLE } from './fuzz-calls.js';
import { AGENT_A, AGENT_B, AGENT_C, RUN_SCOPE, type Ctx } from './fuzz-fixture.js';
import {
  FIELD_VALUES,
  Ref,
  attestationBy,
  freshSealing,
  freshSigning,
  renderPairs,
  weird,
  type Pairs,
} from './fuzz-values.js';

const EXTRA_KEYS = fc.oneof(
  fc.constantFrom('agent_id', '__proto__', 'constructor', 'prototype', 'extra', 'toString', ''),
  fc.string({ maxLength: 12 }),
);

/** The fields of a route's object schema, through refinements and wrappers (zod 3 or 4). */
export function fieldsOf(route: Route): string[] {
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
  owner: fc.constant('_shared'),
  fallback: fc.constant('shared'),
  agents: fc.subarray([AGENT_A, AGENT_B], { minLength: 1 }),
  // The bridge provisions an agent or the shared secrets.
  '/secrets/put:agent_id': fc.constantFrom(AGENT_A, AGENT_B, '_shared'),
  '/secrets/list:agent_id': fc.constantFrom(AGENT_A, '_shared'),
  '/secrets/metadata:agent_id': fc.constantFrom(AGENT_A, '_shared'),
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
  brokered: fc.boolean(),
  task: fc.constantFrom('summarise inbox', 'fuzz task'),
  run_id: fc.constant(new Ref('run id', (c) => c.run.id)),
  // The lists and the audit query (a cursor has no valid value of its own: it comes from a page).
  limit: fc.integer({ min: 1, max: 200 }),
  root_run_id: fc.constant(new Ref('run id', (c) => c.run.id)),
  direction: fc.constantFrom('from', 'to', 'both'),
  status: fc.constantFrom('active', 'ended', 'all'),
  action: fc.constantFrom('secret.get', 'agent.create', 'run.spawn'),
  category: fc.constantFrom('auth', 'secrets', 'settings'),
  since: fc.constant('2020-01-01T00:00:00Z'),
  until: fc.constant('2099-01-01T00:00:00Z'),
};

/** Whole bodies where fields depend on each other. */
const VALID_BODIES: Record<string, fc.Arbitrary<Pairs>> = {
  // Retire is for good: only C (disabled for good already) or an agent that does not exist.
  '/agents/retire': fc.constantFrom(AGENT_C, 'fz-nobody').map((id): Pairs => [
    ['agent_id', id],
    ['confirm', id],
  ]),
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

export type BodyPlan =
  | { kind: 'pairs'; pairs: Pairs }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'empty' }
  | { kind: 'oversized'; extra: number };

export function bodyPlan(route: Route): fc.Arbitrary<BodyPlan> {
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

export function renderBody(plan: BodyPlan, ctx: Ctx): Buffer {
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
