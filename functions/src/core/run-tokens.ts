/**
 * Run tokens: JWTs the service signs with its online key (ES256) so that a downstream service,
 * or a cloud's workload identity federation, can check offline which run of which agent is
 * calling, with which scope and lineage. One mint function for the token at spawn, at exchange
 * and from `/runs/token`: the header, the claims and the expiry clamp live here only.
 *
 * A token never outlives its run: `exp` is the run's `expires_at` (whole seconds, rounded
 * down). It cannot be revoked once issued (that is what offline verification means): a
 * verifier that must know about an early end reads the run's status document.
 */
import { randomBytes } from 'node:crypto';
import {
  encodeJsonSegment,
  RUN_TOKEN_ALG,
  RUN_TOKEN_TYP,
  type RunTokenClaims,
  type RunView,
} from '@agentpack-identity/protocol';
import type { TokenSigner } from '../ports/token-signer.js';
import { rfc3339 } from '../ports/clock.js';
import { actorOf } from './audit.js';
import type { CoreDeps } from './deps.js';
import { ApiError } from './errors.js';
import type { AgentPrincipal } from './principal.js';

export interface RunTokenDeps {
  signer: TokenSigner;
  /** The `iss` of run tokens: the service's issuer URL. */
  issuerUrl: string;
}

export interface MintedRunToken {
  token: string;
  claims: RunTokenClaims;
  /** When the token expires (RFC 3339): `exp`. */
  expires_at: string;
}

/**
 * Signs a run token for `run`, for `audience`, issued at `nowMs`. A run whose end is less than
 * a second away gets none (`unauthenticated`: it is as good as ended).
 */
export async function mintRunToken(
  deps: RunTokenDeps,
  run: Readonly<Pick<RunView, 'run_id' | 'agent_id' | 'root_run_id' | 'expires_at'>> & {
    lineage: readonly string[];
    scope: readonly string[];
  },
  audience: string,
  nowMs: number,
  jti: string = randomBytes(16).toString('base64url'),
): Promise<MintedRunToken> {
  const iat = Math.floor(nowMs / 1000);
  const exp = Math.floor(Date.parse(run.expires_at) / 1000);
  if (!(exp > iat)) throw new ApiError('unauthenticated', 'the run has ended');
  const claims: RunTokenClaims = {
    iss: deps.issuerUrl,
    sub: run.agent_id,
    aud: audience,
    run_id: run.run_id,
    root_run_id: run.root_run_id,
    lineage: [...run.lineage],
    scope: [...run.scope],
    iat,
    exp,
    jti,
  };
  const kid = await deps.signer.signingKid();
  const input = `${encodeJsonSegment({ alg: RUN_TOKEN_ALG, typ: RUN_TOKEN_TYP, kid })}.${encodeJsonSegment(claims)}`;
  const signature = await deps.signer.sign(kid, Buffer.from(input, 'ascii'));
  return {
    token: `${input}.${signature.toString('base64url')}`,
    claims,
    expires_at: new Date(exp * 1000).toISOString(),
  };
}

/**
 * `/runs/token`: a run token of the calling run for another audience. The run was checked live
 * (lineage, spawning key, agent) by its authentication, whose principal carries the claims.
 */
export async function runToken(
  deps: CoreDeps & RunTokenDeps,
  run: AgentPrincipal,
  audience: string,
): Promise<{ token: string; expires_at: string }> {
  if (run.kind !== 'run') throw new Error('runToken needs a run principal');
  // The principal is the run's document as its authentication just read and checked it.
  const minted = await mintRunToken(deps, run, audience, deps.clock.now());
  await deps.store.transact(async (tx) => {
    tx.audit({
      category: 'auth',
      action: 'run.token',
      actor: actorOf(run),
      target: { agent_id: run.agent_id, run_id: run.run_id, jti: minted.claims.jti },
      at: rfc3339(deps.clock.now()),
      details: { audience, expires_at: minted.expires_at },
    });
  });
  return { token: minted.token, expires_at: minted.expires_at };
}
