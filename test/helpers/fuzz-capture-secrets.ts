/**
 * Chapters of the capture session about secrets: versions written, read, deleted, destroyed and
 * resolved (one read with a failing key service); delegations; settings, pruning and the
 * public documents.
 */
import { expect } from 'vitest';
import { ref, type Keys, type Session } from './fuzz-capture.js';
import { bearer } from './tokens.js';

/** Secrets: versions, compare-and-set, refusals, reads, delete/undelete/destroy, resolve. Returns the latest value. */
export async function secrets(s: Session, { ka, kb }: Keys, token: string): Promise<string> {
  const { secretValue, call, B, D, a, b } = s;
  // Secrets.
  const v1 = secretValue('api-1');
  const v2 = secretValue('api-2');
  const v3 = secretValue('api-3');
  await call('put', '/secrets/put', { name: 'api_key', value: v1, cas: 0 }, D(ka.device_key), 200);
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
  // Operators provision write-only: the bridge key names the agent, and never reads a value.
  await call(
    'put bridge without agent_id',
    '/secrets/put',
    { name: 'api_key', value: secretValue('bridge-no-agent') },
    B,
    400,
  );
  const vop = secretValue('operator');
  await call('put bridge', '/secrets/put', { agent_id: a, name: 'op_key', value: vop }, B, 200);
  await call('get bridge', '/secrets/get', { name: 'op_key' }, B, 403);
  await call('resolve bridge', '/secrets/resolve', { refs: [ref(a, 'op_key')] }, B, 403);
  const op = await call(
    'get operator-put',
    '/secrets/get',
    { name: 'op_key' },
    D(ka.device_key),
    200,
  );
  expect(op.value).toBe(vop);
  // A shared secret: put by the bridge, granted to a, read by a, not found for b.
  const vshared = secretValue('shared');
  await call(
    'put shared',
    '/secrets/put',
    { agent_id: '_shared', name: 'shared_key', value: vshared },
    B,
    200,
  );
  await call('grant shared', '/secrets/grant', { name: 'shared_key', agents: [a] }, B, 200);
  const shared = await call(
    'get shared',
    '/secrets/get',
    { name: 'shared_key', owner: '_shared' },
    D(ka.device_key),
    200,
  );
  expect(shared.value).toBe(vshared);
  await call(
    'get shared not granted',
    '/secrets/get',
    { name: 'shared_key', owner: '_shared' },
    D(kb.device_key),
    404,
  );
  await call(
    'resolve shared by fallback',
    '/secrets/resolve',
    { refs: [ref(a, 'shared_key')], fallback: 'shared' },
    D(ka.device_key),
    200,
  );
  const got = await call('get', '/secrets/get', { name: 'api_key' }, D(ka.device_key), 200);
  expect(got.value).toBe(v3);
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
  await call('get deleted', '/secrets/get', { name: 'api_key', version: 2 }, D(ka.device_key), 404);
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
  return v3;
}

/** Delegations from agent a: used, out of scope, by a bystander, revoked. Returns the headers of a delegated call. */
export async function delegations(
  s: Session,
  { ka, kb, kc }: Keys,
  token: string,
  v3: string,
): Promise<Record<string, string>> {
  const { n, secretValue, call, B, D, a, b, c } = s;
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
  return dgHeaders;
}

/** Settings (pruning versions in the `pruning` variant) and the public documents. Returns the latest value. */
export async function settingsAndPublicDocuments(
  s: Session,
  { ka }: Keys,
  v3: string,
): Promise<string> {
  const { variant, svc, capture, secretValue, call, B, D } = s;
  let latest = v3;
  // Settings and public documents.
  await call('settings/list', '/settings/list', {}, B, 200);
  await call('settings/list by device', '/settings/list', {}, D(ka.device_key), 403);
  if (variant === 'pruning') {
    await call('settings/set', '/settings/set', { key: 'secrets.max_versions', value: 1 }, B, 200);
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
  return latest;
}
