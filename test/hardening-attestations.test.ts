/**
 * Hardening 0.2, "Attestations" (finding 8): the key of a disabled, retired or missing agent
 * gives `valid: false, reason: "agent_disabled"`; and a caller other than the bridge or the
 * key's own agent learns only `{valid: false, reason: "unknown_key"}` about another agent's key
 * — exactly the answer (status and body) for a key_id that does not exist. Over HTTP for the
 * credentials whose scope can reach the route (bridge, device keys), and on the core for every
 * principal kind (a delegated call acts for its delegator).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateDeviceKeys, signAttestation } from '@agentpack-identity/protocol';
import { verifyAttestation } from '../functions/src/core/attestations.js';
import type {
  ActiveDelegation,
  DevicePrincipal,
  Principal,
  RunPrincipal,
  TokenPrincipal,
} from '../functions/src/core/principal.js';
import { openEnrolledKey } from './helpers/sealed-enrollment.js';
import { startTestService, type ApiResult, type TestService } from './helpers/service.js';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const JOB = { job_id: 'job-9', input_sha256: 'a'.repeat(64), output_sha256: 'b'.repeat(64), rc: 0 };
const NO_SUCH_KEY = 'dk_AAAAAAAAAAAAAAAA';

let svc: TestService;
/** Agent A's enrolled device: its key id, fingerprint, device key and a valid attestation. */
let device: { keyId: string; fingerprint: string; key: string; signature: string };
let plainA: string;
let plainB: string;

beforeEach(async () => {
  svc = await startTestService();
  for (const id of ['agent-a', 'agent-b']) {
    expect(
      (await svc.post('/agents/create', { display_name: id, agent_id: id }, svc.bridge)).status,
    ).toBe(201);
  }
  const keys = generateDeviceKeys();
  const { code } = (
    await svc.post('/device/enrollments/create', { agent_id: 'agent-a' }, svc.bridge)
  ).body;
  const enrolled = await svc.post('/device/enroll', {
    code,
    sealing_public_key: b64(keys.sealing.publicKey),
    signing_public_key: b64(keys.signing.publicKey),
  });
  expect(enrolled.status).toBe(201);
  device = {
    keyId: enrolled.body.key_id,
    fingerprint: enrolled.body.fingerprint,
    key: openEnrolledKey(enrolled.body, keys.sealing),
    signature: signAttestation(JOB, keys.signing.privateKey),
  };
  const issue = async (agent: string) =>
    (await svc.post('/device/issue', { agent_id: agent }, svc.bridge)).body.device_key as string;
  plainA = await issue('agent-a');
  plainB = await issue('agent-b');
});
afterEach(async () => {
  await svc.close();
});

function verify(
  headers: Record<string, string>,
  change: Record<string, unknown> = {},
): Promise<ApiResult> {
  return svc.post(
    '/attestations/verify',
    { key_id: device.keyId, ...JOB, signature: device.signature, ...change },
    headers,
  );
}

const full = (extra: Record<string, unknown>) => ({
  agent_id: 'agent-a',
  key_id: device.keyId,
  fingerprint: device.fingerprint,
  ...extra,
});

describe('an attestation by the key of a disabled agent', () => {
  it('is valid: false, reason agent_disabled, until the agent is enabled again', async () => {
    expect((await verify(svc.bridge)).body).toEqual(full({ valid: true }));
    expect((await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge)).status).toBe(
      200,
    );
    const disabled = await verify(svc.bridge);
    expect(disabled.status).toBe(200);
    expect(disabled.body).toEqual(full({ valid: false, reason: 'agent_disabled' }));
    // Whatever else is true of the key: revoked as well, it still says why it cannot attest.
    await svc.post('/device/revoke', { key_id: device.keyId }, svc.bridge);
    expect((await verify(svc.bridge)).body).toEqual(
      full({ valid: false, reason: 'agent_disabled' }),
    );
    await svc.post('/agents/enable', { agent_id: 'agent-a' }, svc.bridge);
    expect((await verify(svc.bridge)).body).toEqual(full({ valid: false, reason: 'key_revoked' }));
  });

  it('is agent_disabled when the agent record is gone', async () => {
    await svc.store.transact(async (tx) => tx.delete('agents', 'agent-a'));
    const res = await verify(svc.bridge);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(full({ valid: false, reason: 'agent_disabled' }));
  });

  it('still reports a bad signature as such', async () => {
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect((await verify(svc.bridge, { rc: 1 })).body).toEqual(
      full({ valid: false, reason: 'bad_signature' }),
    );
  });
});

describe('another agent’s key', () => {
  it('over HTTP: another agent’s device key gets exactly the answer for a key that does not exist', async () => {
    const unknown = await verify(svc.device(plainB), { key_id: NO_SUCH_KEY });
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual({ valid: false, reason: 'unknown_key' });
    // Valid, tampered, revoked: agent B learns the same nothing about A's key each time.
    const answers = [await verify(svc.device(plainB)), await verify(svc.device(plainB), { rc: 1 })];
    await svc.post('/device/revoke', { key_id: device.keyId }, svc.bridge);
    answers.push(await verify(svc.device(plainB)));
    for (const res of answers) {
      expect(res.status).toBe(unknown.status);
      expect(res.text).toBe(unknown.text);
    }
    expect(svc.responses.filter((t) => t.includes('"unknown_key"')).length).toBe(4);
  });

  it('over HTTP: the key’s own agent (any of its device keys) and the bridge see the full answer', async () => {
    for (const headers of [svc.device(plainA), svc.device(device.key), svc.bridge]) {
      const res = await verify(headers);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(full({ valid: true }));
      expect((await verify(headers, { rc: 1 })).body).toEqual(
        full({ valid: false, reason: 'bad_signature' }),
      );
    }
    // Its own agent, asking about a key that does not exist: the same unknown_key answer.
    const none = await verify(svc.device(plainA), { key_id: NO_SUCH_KEY });
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ valid: false, reason: 'unknown_key' });
  });

  it('on the core: decided by the agent the caller acts for — a delegated call acts for its delegator', async () => {
    const deps = { store: svc.store, clock: { now: () => Date.now() } };
    const input = { key_id: device.keyId, ...JOB, signature: device.signature };
    const deviceOf = (agent: string, delegation?: ActiveDelegation): DevicePrincipal => ({
      kind: 'device',
      agent_id: agent,
      key_id: 'dk_BBBBBBBBBBBBBBBB',
      key_digest: 'digest',
      sealing_public_key: null,
      expires_at: null,
      ...(delegation === undefined ? {} : { delegation }),
    });
    const tokenOf = (agent: string, delegation?: ActiveDelegation): TokenPrincipal => ({
      kind: 'token',
      agent_id: agent,
      jti: 'jti-1',
      kid: 'test-key-1',
      scope: ['agents/get'],
      exp: Math.floor(Date.now() / 1000) + 60,
      ...(delegation === undefined ? {} : { delegation }),
    });
    const runOf = (agent: string): RunPrincipal => ({
      kind: 'run',
      agent_id: agent,
      run_id: 'run_CCCCCCCCCCCCCCCCCCCCCC',
      root_run_id: 'run_CCCCCCCCCCCCCCCCCCCCCC',
      lineage: ['run_CCCCCCCCCCCCCCCCCCCCCC'],
      scope: ['agents/get'],
      expires_at: new Date(Date.now() + 60_000).toISOString(),
    });
    const from = (agent: string): ActiveDelegation => ({
      delegation_id: 'dg_DDDDDDDDDDDDDDDDDDDDDD',
      from_agent: agent,
      scope: ['agents/get'],
      expires_at: new Date(Date.now() + 60_000).toISOString(),
    });
    const sees: Principal[] = [
      { kind: 'bridge', bridge_key_id: 'bk_test' },
      deviceOf('agent-a'),
      tokenOf('agent-a'),
      runOf('agent-a'),
      deviceOf('agent-b', from('agent-a')), // B acting for A
      tokenOf('agent-b', from('agent-a')),
    ];
    const blind: Principal[] = [
      deviceOf('agent-b'),
      tokenOf('agent-b'),
      runOf('agent-b'),
      deviceOf('agent-a', from('agent-b')), // A acting for B: not for A
      tokenOf('agent-a', from('agent-b')),
    ];
    const none = await verifyAttestation(deps, blind[0]!, { ...input, key_id: NO_SUCH_KEY });
    expect(none).toEqual({ valid: false, reason: 'unknown_key' });
    for (const principal of sees) {
      expect(await verifyAttestation(deps, principal, input), JSON.stringify(principal)).toEqual(
        full({ valid: true }),
      );
    }
    for (const principal of blind) {
      expect(await verifyAttestation(deps, principal, input), JSON.stringify(principal)).toEqual(
        none,
      );
    }
    // A disabled agent's key: agent_disabled to who may see it, unknown_key to everyone else.
    await svc.post('/agents/disable', { agent_id: 'agent-a' }, svc.bridge);
    expect(await verifyAttestation(deps, sees[0]!, input)).toEqual(
      full({ valid: false, reason: 'agent_disabled' }),
    );
    for (const principal of blind) {
      expect(await verifyAttestation(deps, principal, input)).toEqual(none);
    }
  });
});
