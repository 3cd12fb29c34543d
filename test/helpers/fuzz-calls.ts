/**
 * Small steps on a test service shared by the fuzzing and leak suites: expect a status, issue a
 * device key, sign a request, and the scope an agent can delegate.
 */
import { DELEGABLE_RPCS, signRequest } from '@agentpack-identity/protocol';
import type { ApiResult, TestService } from './service.js';

/** Every RPC an agent may delegate (and a token or a run may be given). */
export const DELEGABLE: string[] = [...DELEGABLE_RPCS];

export type Seed = Uint8Array;

/** A request before its credential headers: what a signature covers. */
export interface Unsigned {
  method: string;
  path: string;
  body: Buffer;
}

/** The real clock, plus a skew the fixture moves forward to expire a key and a delegation. */
export const skewClock = { skewMs: 0, now: () => Date.now() + skewClock.skewMs };

export function must(res: ApiResult, status: number, what: string): any {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${res.text}`);
  }
  return res.body;
}

export async function issueKey(svc: TestService, agentId: string): Promise<[string, string]> {
  const body = must(
    await svc.post('/device/issue', { agent_id: agentId }, svc.bridge),
    201,
    'issue',
  );
  return [body.device_key, body.key_id];
}

export const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/** The signature headers of a request, signed with `seed` at the service's clock. */
export function signed(
  seed: Seed,
  sent: Unsigned,
  nowMs = skewClock.now(),
): Array<[string, string]> {
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
