/**
 * Chapters of the capture session about enrolled devices and runs: enrollment codes, signed and
 * sealed requests, attestations; runs spawned, acting within their scope, children, completed
 * and revoked, and their public document.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { generateDeviceKeys, signAttestation } from '@agentpack-identity/protocol';
import { b64 } from './fuzz-calls.js';
import { ref, type Keys, type Session } from './fuzz-capture.js';
import { openEnrolledKey } from './sealed-enrollment.js';
import { bearer } from './tokens.js';

/** Enrollment (codes, fingerprints, small-order keys), signed and sealed reads, require_sealed, attestations. */
export async function enrolledDevices(
  s: Session,
  { ka, kb }: Keys,
  token: string,
  latest: string,
): Promise<void> {
  const { n, capture, nowMs, call, signedCall, B, D, a } = s;
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
  const enrolledKey = openEnrolledKey(enrolled, devKeys.sealing);
  capture.sealedDeviceKeys.push(enrolledKey);
  await call('enroll, code reused', '/device/enroll', enrollBody, {}, 401);
  const asDevice: [string, string] = ['x-agentpack-device-key', enrolledKey];
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
    D(enrolledKey),
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
    D(enrolledKey),
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
    D(ka.device_key),
    200,
  );
  expect(tampered).toMatchObject({ valid: false, reason: 'bad_signature' });
  // Another agent learns nothing about the key: the same answer as for a key that does not exist.
  const foreign = await call(
    'attestation, another agent’s key',
    '/attestations/verify',
    { key_id: enrolled.key_id, ...job, signature: attestation },
    D(kb.device_key),
    200,
  );
  expect(foreign).toEqual({ valid: false, reason: 'unknown_key' });
  const unknown = await call(
    'attestation, unknown key',
    '/attestations/verify',
    { key_id: 'dk_AAAAAAAAAAAAAAAA', ...job, signature: attestation },
    D(ka.device_key),
    200,
  );
  expect(unknown).toEqual({ valid: false, reason: 'unknown_key' });
}

/** Runs: spawn, act within scope, children, complete, revoke, the public document. */
export async function runs(
  s: Session,
  { ka }: Keys,
  latest: string,
  dgHeaders: Record<string, string>,
): Promise<void> {
  const { variant, svc, capture, secretValue, call, signedCall, B, D } = s;
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
  await call('run without a signature', '/agents/get', {}, { 'x-agentpack-run': root.run_id }, 401);
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
}
