/**
 * `/auth/exchange`: a workload's token from a trusted issuer (a Kubernetes projected
 * service-account token, a GitHub Actions OIDC token, a Google identity token) becomes a root
 * run of the role's agent, with the role's scope, for no longer than the role allows and the
 * subject token lives. No static credential is involved: the subject token is the credential.
 *
 * Every refusal is a 401 with its `details.reason`, in the order the checks run: the token's
 * shape and algorithm, the role, the issuer, the signature, the time claims, the audience,
 * the bound claims, the agent. An issuer whose keys cannot be fetched is a 503. The subject
 * token is never logged, stored or repeated; the audit keeps the issuer, `sub`, role and run.
 */
import type { z } from 'zod';
import type { authExchangeRequest } from '@agentpack-identity/protocol';
import type { CoreDeps } from './deps.js';
import { ApiError } from './errors.js';
import { issuerDocId } from './federation.js';
import type { IssuerKeys } from './issuer-keys.js';
import type { RunTokenDeps } from './run-tokens.js';
import { spawnRun, type SpawnedRun } from './spawn.js';
import { readSetting } from './settings.js';
import {
  checkSubjectClaims,
  parseSubjectToken,
  verifySubjectSignature,
  type Refused,
} from '../tokens/subject-token.js';

export interface ExchangeDeps extends CoreDeps, RunTokenDeps {
  issuerKeys: IssuerKeys;
}

function refusal(refused: Pick<Refused, 'reason' | 'message' | 'claim'>): ApiError {
  return new ApiError('unauthenticated', refused.message, {
    reason: refused.reason,
    ...(refused.claim === undefined ? {} : { claim: refused.claim }),
  });
}

/** Exchanges a subject token for a root run of the role's agent. */
export async function exchange(
  deps: ExchangeDeps,
  input: z.output<typeof authExchangeRequest>,
): Promise<SpawnedRun> {
  const token = parseSubjectToken(input.subject_token);
  if (!token.ok) throw refusal(token);
  const role = await deps.store.get('roles', input.role);
  if (role === null) {
    throw refusal({ reason: 'unknown_role', message: 'there is no such role' });
  }
  const untrusted = () =>
    refusal({
      reason: 'untrusted_issuer',
      message: "the subject token's issuer is not the role's trusted issuer",
    });
  if (token.claims['iss'] !== role.issuer) throw untrusted();
  const issuer = await deps.store.get('issuers', issuerDocId(role.issuer));
  if (issuer === null) throw untrusted();
  const key = await deps.issuerKeys.keyFor(issuer, {
    alg: token.alg,
    ...(token.kid === undefined ? {} : { kid: token.kid }),
  });
  if (key === null) {
    throw refusal({
      reason: 'bad_signature',
      message: "no key of the issuer matches the subject token's kid and alg",
    });
  }
  if (!verifySubjectSignature(token, key)) {
    throw refusal({
      reason: 'bad_signature',
      message: "the subject token's signature does not verify",
    });
  }
  const nowMs = deps.clock.now();
  const claimsRefused = checkSubjectClaims(token.claims, role, nowMs);
  if (claimsRefused !== null) throw refusal(claimsRefused);
  // The run never outlives the subject token, so a token within its skew but past (or at) its
  // exp makes no run: it is expired for this purpose.
  const expMs = (token.claims['exp'] as number) * 1000;
  if (expMs - nowMs < 1000) {
    throw refusal({ reason: 'expired', message: 'the subject token has expired' });
  }
  // The role's life, within the current ceiling (the setting may have been lowered since).
  const maxTtl = Math.min(role.ttl_seconds, await readSetting(deps.store, 'runs.max_ttl_seconds'));
  const ttl = input.ttl_seconds ?? maxTtl;
  if (ttl > maxTtl) {
    throw new ApiError('invalid_argument', "ttl_seconds is above the role's", {
      field: 'ttl_seconds',
      max_ttl_seconds: maxTtl,
    });
  }
  return spawnRun(
    deps,
    {
      kind: 'federated',
      agent_id: role.agent_id,
      role: role.role,
      issuer: role.issuer,
      subject: token.claims['sub'] as string,
      scope: role.scope,
      role_version: role.updated_at,
      exp_ms: expMs,
    },
    {
      task: input.task ?? `exchange:${role.role}`,
      scope: role.scope,
      ttl_seconds: ttl,
      public_key: input.public_key,
      audience: input.audience,
    },
  );
}
