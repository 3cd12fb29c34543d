/**
 * One fuzzed request: the credential kind it carries, the header plan (case, repeats, content
 * type, extra and garbage headers, method and path variants) and the request built from both
 * and a body; with what a failure report needs to show it.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import type { Digester } from '../../functions/src/core/digest.js';
import type { Store } from '../../functions/src/ports/store.js';
import type { Route } from '../../functions/src/routes/route.js';
import { renderBody, type BodyPlan } from './fuzz-bodies.js';
import { signed, type Unsigned } from './fuzz-calls.js';
import { AGENT_B, type Ctx } from './fuzz-fixture.js';
import { PRINTABLE_ASCII, Ref, latin1String } from './fuzz-values.js';
import { BRIDGE_KEY } from './service.js';

/** The credential kinds the fuzzer sends. `delegated-*` is a caller kind `delegated`. */
export const KINDS = [
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
export type Kind = (typeof KINDS)[number];

export const CALLER_KIND: Record<Kind, string | null> = {
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
export const headerPlan: fc.Arbitrary<HeaderPlan> = fc.oneof(
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

export interface Sent {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Signed with the right key at the right time: the service may spend the nonce. */
  correctlySigned: boolean;
}

export function buildRequest(
  route: Route,
  kind: Kind,
  plan: HeaderPlan,
  body: BodyPlan,
  ctx: Ctx,
): Sent {
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
export async function nonceIdOf(
  store: Store,
  digest: Digester,
  sent: Sent,
): Promise<string | undefined> {
  const header = (name: string) =>
    sent.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
  const [nonce] = header('x-agentpack-nonce');
  if (nonce === undefined) return undefined;
  const [run] = header('x-agentpack-run');
  const [device] = header('x-agentpack-device-key');
  let keyId: string | undefined = run;
  if (keyId === undefined && device !== undefined && /^[\x21-\x7e]+$/.test(device)) {
    keyId = (await store.get('device_keys', digest('device_key', device)))?.key_id;
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

export function describeSent(sent: Sent): string {
  const body = sent.body.toString('utf8');
  return `${sent.method} ${sent.path}\n${sent.headers
    .map(
      ([n, v]) =>
        `${n}: ${v.length > 120 ? `${v.slice(0, 120)}…(${v.length})` : v}${decodeBearer(v)}`,
    )
    .join('\n')}\n\n${body.length > 300 ? `${body.slice(0, 300)}…(${body.length} bytes)` : body}`;
}
