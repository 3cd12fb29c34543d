/**
 * Generators of field values. Values that depend on the fixture (a real key id, a real
 * delegation) are `Ref`s, resolved when the request is sent; numbers that JSON.stringify cannot
 * write are `Raw`.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { generateDeviceKeys, signAttestation } from '@agentpack-identity/protocol';
import { encodeCursor } from '../../functions/src/core/paging.js';
import { DELEGABLE, b64 } from './fuzz-calls.js';
import { AGENT_A, AGENT_B, AGENT_C, type Ctx } from './fuzz-fixture.js';

/** The fixed seed every property derives its own from. */
export const SEED = 20_261_123;

export class Ref {
  constructor(
    readonly label: string,
    readonly pick: (ctx: Ctx) => string,
  ) {}
  [fc.toStringMethod](): string {
    return `<${this.label}>`;
  }
}

/** A long literal, printed by its label in counterexamples. */
export class Long {
  constructor(
    readonly label: string,
    readonly value: string,
  ) {}
  [fc.toStringMethod](): string {
    return `<${this.label}>`;
  }
}

export class Raw {
  constructor(readonly text: string) {}
  [fc.toStringMethod](): string {
    return this.text.length > 40
      ? `<raw ${this.text.slice(0, 20)}… (${this.text.length})>`
      : this.text;
  }
}

export type Pairs = Array<[string, unknown]>;

/** The public key of the fixture's run (spawning another run with it is refused). */
function runPublicKey(ctx: Ctx): string {
  return ctx.run.publicKey;
}

/** A valid attestation signature of a fixed job by the enrolled device (for another job: invalid). */
export function attestationBy(ctx: Ctx): string {
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

export function render(value: unknown, ctx: Ctx): string {
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

export function renderPairs(pairs: Pairs, ctx: Ctx): string {
  return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${render(v, ctx)}`).join(',')}}`;
}

const LATIN1_PRINTABLE = [
  ...Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)),
  ...Array.from({ length: 0x100 - 0x80 }, (_, i) => String.fromCharCode(0x80 + i)),
];
export const PRINTABLE_ASCII = LATIN1_PRINTABLE.filter((c) => c > ' ' && c < '\x7f');

export const latin1String = (maxLength: number) =>
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
export const weird: fc.Arbitrary<unknown> = fc.oneof(
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
/** What a fuzzed retire may name: never A or B, which the credential kinds need. */
const retirable = fc.oneof(
  fc.constantFrom(AGENT_C, 'fz-nobody', '_shared', 'A!'),
  fc.stringMatching(/^fz-gone-[a-z0-9]{4}$/),
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
    `agentpack.secret://_shared/api_key`,
    `agentpack.secret://_shared/api_key#1`,
    'agentpack.secret://',
    'agentpack.secret:///#',
  ),
  fc.tuple(agentId, secretName).map(([a, n]) => `agentpack.secret://${a}/${n}`),
  fc.string({ maxLength: 40 }),
);

/** Raw 32-byte keys: fresh valid ones, small-order and malformed ones. */
export const freshSealing = new Ref('fresh X25519 key', () =>
  b64(generateDeviceKeys().sealing.publicKey),
);
export const freshSigning = new Ref('fresh Ed25519 key', () =>
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

/**
 * The queries a cursor is checked against when a list is called without filters (for
 * /device/list: by agent A's device key), so a cursor made for them reaches the store.
 */
const UNFILTERED: Record<string, Record<string, unknown>> = {
  'agents/list': { disabled: undefined },
  'device/list': { agent_id: AGENT_A, include_revoked: false },
  'audit/query': {
    agent_id: undefined,
    run_id: undefined,
    action: undefined,
    category: undefined,
    since: undefined,
    until: undefined,
  },
};

/**
 * Cursors: garbage, well-formed with a wrong check, and cursors made by the service's own
 * encoder around any key (a forged position: refused, or read from, never a 5xx).
 */
const cursorValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.stringMatching(/^[A-Za-z0-9_-]{8,60}\.[A-Za-z0-9_-]{16}$/),
  fc
    .tuple(fc.constantFrom(...Object.keys(UNFILTERED)), fc.string({ maxLength: 20 }))
    .map(([r, k]) => {
      const payload = b64(Buffer.from(JSON.stringify({ v: 1, r, q: 'x', k })));
      return `${payload}.${b64(Buffer.from('not the check'))}`;
    }),
  fc
    .tuple(
      fc.constantFrom(...Object.keys(UNFILTERED)),
      fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.string({ unit: 'binary', maxLength: 30 }),
        fc.constantFrom('0', '-1', '1e3', '99999999999999999999', '\u0000', 'z'.repeat(401)),
        fc.nat().map(String),
      ),
    )
    .map(([r, k]) => encodeCursor(r, UNFILTERED[r]!, k)),
);

/** RFC 3339 times, valid and not: offsets, fractions, impossible dates, years out of range. */
const instant = fc.oneof(
  fc
    .integer({ min: Date.parse('2020-01-01T00:00:00Z'), max: Date.parse('2030-01-01T00:00:00Z') })
    .map((ms) => new Date(ms).toISOString()),
  fc.constantFrom(
    '2026-01-01T00:00:00Z',
    '2026-01-01T00:00:00+05:30',
    '2026-02-30T00:00:00Z',
    '9999-12-31T23:59:59-05:00',
    '0000-01-01T00:00:00+01:00',
    '2026-01-01T00:00:00.0001Z',
    '2026-01-01',
    'yesterday',
  ),
);

/** Plausible values per field (`path:field` first, then `field`). */
export const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
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
  brokered: fc.oneof(fc.boolean(), fc.constantFrom('true', 0, null)),
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
  '/agents/retire:agent_id': retirable,
  '/agents/retire:confirm': retirable,
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
  owner: fc.constantFrom('_shared', AGENT_A, '_SHARED', ''),
  fallback: fc.constantFrom('shared', 'agent', ''),
  agents: fc.array(agentId, { minLength: 0, maxLength: 4 }),
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
  // The lists and the audit query.
  cursor: cursorValue,
  limit: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.constantFrom(0, 201, 1.5), boundaryNumber),
  disabled: fc.boolean(),
  include_revoked: fc.boolean(),
  include_inactive: fc.boolean(),
  direction: fc.constantFrom('from', 'to', 'both', 'From', ''),
  status: fc.constantFrom('active', 'ended', 'all', 'completed', ''),
  root_run_id: fc.oneof(
    { arbitrary: fc.constant(new Ref('run id', (c) => c.run.id)), weight: 2 },
    { arbitrary: fc.stringMatching(/^run_[A-Za-z0-9_-]{22}$/), weight: 1 },
  ),
  action: fc.oneof(
    fc.constantFrom('secret.get', 'agent.create', 'run.spawn', 'nope.nope', 'Secret.Get', '.'),
    fc.stringMatching(/^[a-z_]{1,10}\.[a-z_]{1,10}$/),
  ),
  category: fc.constantFrom('auth', 'secrets', 'settings', 'nope', ''),
  since: instant,
  until: instant,
  // Workload federation.
  audience: fc.oneof(
    fc.constantFrom('https://example.com', 'sts.amazonaws.com', '', 'x'.repeat(257), 'a\nb'),
    fc.string({ maxLength: 30 }),
  ),
  audiences: fc.array(fc.constantFrom('aud-1', 'https://example.com', '', 'x'.repeat(257)), {
    minLength: 0,
    maxLength: 3,
  }),
  issuer: fc.constantFrom(
    'https://token.actions.githubusercontent.com',
    'https://kubernetes.default.svc',
    'http://issuer.example.com',
    'https://issuer.example.com/?q=1',
    'not a url',
    '',
    'x'.repeat(257),
  ),
  jwks: fc.oneof(
    fc.constant({ keys: [] }),
    fc.constant({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43) }] }),
    fc.constant({ keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }] }),
    fc.constant({ keys: [{ kty: 'oct', k: 'AAAA' }] }),
    fc.constant('{"keys":[]}'),
  ),
  role: fc.oneof(
    fc.constantFrom('ci-deploy', 'Ci', 'ab', 'x'.repeat(64)),
    fc.stringMatching(/^[a-z0-9][a-z0-9_-]{2,10}$/),
  ),
  bound_claims: fc.oneof(
    fc.constant({ sub: 'repo:org/*' }),
    fc.constant({ sub: ['a', 'b*'] }),
    fc.constant({}),
    fc.constant({ iss: 'x' }),
    fc.constant({ __proto__: 'x' }),
    fc.constant({ 'bad name': 'x' }),
    fc.constant({ sub: [] }),
    fc.constant({ sub: 5 }),
  ),
  subject_token: fc.oneof(
    fc.constantFrom(
      'a.b.c',
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln',
      '..',
      '',
      'x'.repeat(16_385),
    ),
    fc.string({ maxLength: 80 }),
  ),
  grant_type: fc.constantFrom(
    'urn:ietf:params:oauth:grant-type:token-exchange',
    'client_credentials',
    '',
  ),
  subject_token_type: fc.constantFrom(
    'urn:ietf:params:oauth:token-type:jwt',
    'urn:ietf:params:oauth:token-type:id_token',
    'urn:ietf:params:oauth:token-type:access_token',
  ),
  requested_token_type: fc.constantFrom('urn:ietf:params:oauth:token-type:jwt', 'x'),
};
