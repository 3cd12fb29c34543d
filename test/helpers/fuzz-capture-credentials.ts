/**
 * Chapters of the capture session about credentials: agents and their device keys, credentials
 * pasted in the wrong places, capability tokens, transport-level refusals, and what disabling
 * an agent and the passing of time do to every credential.
 */
import { expect } from 'vitest';
import { generateDeviceKey } from '@agentpack-identity/protocol';
import { DELEGABLE } from './fuzz-calls.js';
import type { Keys, Session, Tokens } from './fuzz-capture.js';
import { BRIDGE_KEY, BRIDGE_KEY_2 } from './service.js';
import { bearer, mintTestToken } from './tokens.js';

/** Agents, device keys (issue, rotate, revoke, expire), and keys pasted where they do not go. */
export async function agentsAndDeviceKeys(s: Session): Promise<Keys> {
  const { n, capture, call, B, D, a, b, c } = s;
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
  const self = await call('issue self', '/device/issue', { label: 'self' }, D(ka.device_key), 201);
  capture.deviceKeys.push(self.device_key);
  const rotated = await call('rotate', '/device/issue', { rotate: true }, D(self.device_key), 201);
  capture.deviceKeys.push(rotated.device_key);
  await call('use rotated-away key', '/agents/get', {}, D(self.device_key), 401);
  await call('rotate with bridge', '/device/issue', { agent_id: a, rotate: true }, B, 400);
  await call('issue unknown agent', '/device/issue', { agent_id: `cap-none-${n}` }, B, 404);
  await call('issue ttl too long', '/device/issue', { agent_id: a, ttl_seconds: 10 ** 9 }, B, 400);
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
  await call('key as delegation_id', '/delegate/revoke', { delegation_id: kb.device_key }, B, 400);
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
  await call('settings/set unknown key', '/settings/set', { key: ka.device_key, value: 1 }, B, 400);
  return { ka, kb, kc, ka2 };
}

/** Capability tokens: used, out of scope, tampered, registered. */
export async function issueTokens(s: Session, { ka }: Keys): Promise<Tokens> {
  const { capture, nowMs, call, B, D, a } = s;
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
  await call('token on bridge route', '/agents/create', { display_name: 'x' }, bearer(token), 403);
  const [, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
  const registration = {
    jti: claims.jti,
    sub: a,
    scope: claims.scope,
    iat: claims.iat,
    exp: claims.exp,
    kid: 'test-key-1',
  };
  await call('tokens/register', '/tokens/register', registration, B, 201);
  await call('tokens/register again', '/tokens/register', registration, B, 409);
  await call(
    'tokens/register the token itself as jti',
    '/tokens/register',
    { jti: token, sub: a, scope: ['agents/get'], iat: 1, exp: 2, kid: 'k' },
    B,
    400,
  );
  return { token, short };
}

/** Refusals before any handler: no route, wrong method, too large, bad JSON, content type or UTF-8, repeated credentials. */
export async function transportRefusals(s: Session, { ka, kb }: Keys): Promise<void> {
  const { variant, svc, capture, secretValue, call, raw, B, D, a } = s;
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
}

/** Disabling stops every credential of the agent; on the frozen clock, keys, delegations and tokens expire. */
export async function disableAndExpiry(
  s: Session,
  { ka, kb, ka2 }: Keys,
  { token, short }: Tokens,
  dgHeaders: Record<string, string>,
): Promise<void> {
  const { clock, call, B, D, a } = s;
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
