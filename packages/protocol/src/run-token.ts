/**
 * Run tokens: the JWTs the service signs itself (ES256, its online key) for a run, so that a
 * downstream service or a cloud's workload identity federation can verify a run offline from
 * `/.well-known/jwks.json`. Never a capability token: another `typ`, another algorithm, another
 * key.
 */

/** The JWS `typ` of a run token. */
export const RUN_TOKEN_TYP = 'agentpack-run+jwt';

/** The only algorithm run tokens are signed with. */
export const RUN_TOKEN_ALG = 'ES256';

/** The claims of a run token. */
export interface RunTokenClaims {
  iss: string;
  /** The run's agent. */
  sub: string;
  aud: string;
  run_id: string;
  root_run_id: string;
  lineage: string[];
  scope: string[];
  iat: number;
  exp: number;
  jti: string;
}

/** The claims the OIDC discovery document lists. */
export const RUN_TOKEN_CLAIMS: readonly string[] = [
  'iss',
  'sub',
  'aud',
  'iat',
  'exp',
  'jti',
  'run_id',
  'root_run_id',
  'lineage',
  'scope',
];

/** RFC 8693 names `/auth/exchange` accepts. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
