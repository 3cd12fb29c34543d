/**
 * The client's public shape: its options, and one method per RPC of the service, each typed by
 * the service's own request and response schemas (`RpcInput` / `RpcOutput`).
 */
import type { CacheOptions, SecretCacheControl } from './cache.js';
import type { CryptoChoice } from './crypto/backend.js';
import type { Credential, RunCredential } from './credentials.js';
import type { AbortSignalLike, RetryOptions } from './retry.js';
import type { RpcInput, RpcName, RpcOutput } from './routes.js';
import type { CallOptions, FetchLike } from './transport.js';

export interface ClientOptions {
  /** The service's base URL (`https://…`; plain http only to a loopback host). */
  url: string;
  /** Who calls; left out, only the public routes, `/device/enroll` and `/auth/exchange` work. */
  credential?: Credential;
  /** The deadline of each attempt, in milliseconds; default 10000. */
  timeoutMs?: number;
  /** Retries of the calls that may be repeated: a count, or the backoff too. Default 2. */
  retries?: number | RetryOptions;
  /** The in-memory cache of secret values; off unless given. */
  cache?: CacheOptions;
  /** Check every answer against its response schema (`bad_response` when it does not match). */
  validateResponses?: boolean;
  /** Allow plain http to a host that is not loopback (a credential would travel in clear). */
  allowInsecureHttp?: boolean;
  /** Which cryptography: `auto` (node:crypto where present, else pure JS), `node`, `portable`. */
  crypto?: CryptoChoice;
  /** Injectable for tests and custom runtimes. */
  fetch?: FetchLike;
  sleep?: (ms: number, signal?: AbortSignalLike) => Promise<void>;
  random?: () => number;
  /** Milliseconds since the Unix epoch: request timestamps, cache ages, Retry-After dates. */
  now?: () => number;
}

/** A method of one RPC: its input (optional when every field is) and its call options. */
export type Call<R extends RpcName> =
  {} extends RpcInput<R>
    ? (input?: RpcInput<R>, options?: CallOptions) => Promise<RpcOutput<R>>
    : (input: RpcInput<R>, options?: CallOptions) => Promise<RpcOutput<R>>;

/** A secret read: its value in clear, whether it came back sealed (then opened here) or not. */
export type SecretValue = Extract<RpcOutput<'secrets/get'>, { value: string }>;

/** One resolved reference, its value in clear (opened here when it came back sealed). */
export type ResolvedValue = Extract<
  RpcOutput<'secrets/resolve'>['values'][number],
  { value: string }
>;

/** Options of `secrets.get`: the request's own fields besides `name`, and the call's. */
export type SecretGetOptions = Omit<RpcInput<'secrets/get'>, 'name'> &
  CallOptions & {
    /** `false`: ask the service even when a fresh value is cached (and cache the answer). */
    cache?: boolean;
  };

/** Options of `secrets.put`: the request's own fields besides `name` and `value`, and the call's. */
export type SecretPutOptions = Omit<RpcInput<'secrets/put'>, 'name' | 'value'> & CallOptions;

/** The answer of `runs.start`: the run, its credential (keep its key secret) and a client as it. */
export interface StartedRun {
  run: RpcOutput<'runs/spawn'>;
  credential: RunCredential;
  client: AgentpackClient;
}

export interface AgentpackClient {
  /** The base URL, without a trailing slash. */
  readonly url: string;
  /** The kind of credential this client holds, or null. */
  readonly credentialKind: Credential['kind'] | null;
  /** The secret-value cache (a no-op when the client has none). */
  readonly cache: SecretCacheControl;

  agents: {
    create: Call<'agents/create'>;
    get: Call<'agents/get'>;
    list: Call<'agents/list'>;
    disable: Call<'agents/disable'>;
    enable: Call<'agents/enable'>;
    retire: Call<'agents/retire'>;
  };
  device: {
    issue: Call<'device/issue'>;
    revoke: Call<'device/revoke'>;
    list: Call<'device/list'>;
    /** `POST /device/enroll` as is (the code is the credential); see also `enrollDevice`. */
    enroll: Call<'device/enroll'>;
    enrollments: { create: Call<'device/enrollments/create'> };
  };
  attestations: { verify: Call<'attestations/verify'> };
  /** `POST /delegate`. */
  delegate: Call<'delegate'>;
  delegations: {
    /** `POST /delegate`. */
    create: Call<'delegate'>;
    /** `POST /delegate/revoke`. */
    revoke: Call<'delegate/revoke'>;
    list: Call<'delegations/list'>;
  };
  secrets: {
    /**
     * One version's value (the current one unless `version`); `owner: "_shared"` for a shared
     * secret. With `seal: true` (the default for an enrolled device) the service seals it to the
     * device's pinned key and the value is opened here. Served from the cache while fresh.
     */
    get(name: string, options?: SecretGetOptions): Promise<SecretValue>;
    get(
      input: RpcInput<'secrets/get'>,
      options?: CallOptions & { cache?: boolean },
    ): Promise<SecretValue>;
    /** Writes a new version (never retried); drops the name from the cache. */
    put(name: string, value: string, options?: SecretPutOptions): Promise<RpcOutput<'secrets/put'>>;
    put(input: RpcInput<'secrets/put'>, options?: CallOptions): Promise<RpcOutput<'secrets/put'>>;
    list: Call<'secrets/list'>;
    metadata: Call<'secrets/metadata'>;
    delete: Call<'secrets/delete'>;
    undelete: Call<'secrets/undelete'>;
    destroy: Call<'secrets/destroy'>;
    /** Every reference's value, in order (sealed answers opened here, as for `get`). */
    resolve(
      input: RpcInput<'secrets/resolve'>,
      options?: CallOptions,
    ): Promise<{ values: ResolvedValue[] }>;
    grant: Call<'secrets/grant'>;
    ungrant: Call<'secrets/ungrant'>;
  };
  tokens: { register: Call<'tokens/register'> };
  settings: { list: Call<'settings/list'>; set: Call<'settings/set'> };
  runs: {
    spawn: Call<'runs/spawn'>;
    /**
     * Spawns a run with an Ed25519 key pair made here (the private half never leaves this
     * process): the run, its credential and a client that acts as the run.
     */
    start(
      input: Omit<RpcInput<'runs/spawn'>, 'public_key'>,
      options?: CallOptions,
    ): Promise<StartedRun>;
    complete: Call<'runs/complete'>;
    revoke: Call<'runs/revoke'>;
    token: Call<'runs/token'>;
    list: Call<'runs/list'>;
  };
  issuers: { put: Call<'issuers/put'>; list: Call<'issuers/list'>; delete: Call<'issuers/delete'> };
  roles: {
    put: Call<'roles/put'>;
    get: Call<'roles/get'>;
    list: Call<'roles/list'>;
    delete: Call<'roles/delete'>;
  };
  auth: { exchange: Call<'auth/exchange'> };
  audit: { query: Call<'audit/query'> };
  /** The public documents (GET, no credential sent). */
  wellKnown: {
    /** `/.well-known/agentpack-identity`: issuer, audience and every public token key. */
    identity(options?: CallOptions): Promise<RpcOutput<'.well-known/agentpack-identity'>>;
    /** `/.well-known/jwks.json`: the run-token keys. */
    jwks(options?: CallOptions): Promise<RpcOutput<'.well-known/jwks.json'>>;
    /** `/.well-known/openid-configuration`. */
    openidConfiguration(
      options?: CallOptions,
    ): Promise<RpcOutput<'.well-known/openid-configuration'>>;
    /** `/.well-known/agentpack-agent-identity/<run_id>`: a run's public key and status. */
    run(
      runId: string,
      options?: CallOptions,
    ): Promise<RpcOutput<'.well-known/agentpack-agent-identity'>>;
  };
  /** `GET /healthz`. */
  health(options?: CallOptions): Promise<RpcOutput<'healthz'>>;
  /** `GET /openapi.json`. */
  openapi(options?: CallOptions): Promise<RpcOutput<'openapi.json'>>;
  /** Any RPC by its name, typed (the methods above are this with a name). */
  call<R extends RpcName>(rpc: R, input: RpcInput<R>, options?: CallOptions): Promise<RpcOutput<R>>;
  /** The same options with another credential (its own, empty cache). */
  withCredential(credential: Credential | undefined): AgentpackClient;
  /** The same credential acting under a delegation (or none: undefined), with its own cache. */
  withDelegation(delegationId: string | undefined): AgentpackClient;
}
