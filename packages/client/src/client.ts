/**
 * `createClient({url, credential})`: one object whose methods are named after the service's
 * RPCs (`secrets.get` is `POST /secrets/get`), typed by the service's own request and response
 * schemas, for every credential kind.
 */
import { LOOPBACK_HOST_PATTERN, runIdField } from '@agentpack-identity/protocol';
import type {
  AgentpackClient,
  Call,
  ClientOptions,
  ResolvedValue,
  SecretGetOptions,
  SecretPutOptions,
  SecretValue,
  StartedRun,
} from './api.js';
import { SecretCache, type SecretCacheControl } from './cache.js';
import { cryptoBackend, type CryptoBackend } from './crypto/backend.js';
import { fromBase64Url, fromUtf8, randomBytes, toBase64Url } from './crypto/bytes.js';
import {
  prepareCredential,
  withDelegation,
  type PreparedCredential,
  type ReadyCredential,
  type RunCredential,
} from './credentials.js';
import { AgentpackError } from './errors.js';
import { defaultSleep, resolveRetry } from './retry.js';
import { ROUTES, type RpcInput, type RpcName, type RpcOutput } from './routes.js';
import { checkInput, Transport, type CallOptions } from './transport.js';

/** The base URL checked: http(s), no query or fragment, plain http only to loopback. */
function baseUrlOf(url: string, credential: boolean, allowInsecureHttp: boolean): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`url is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new TypeError('url must be http(s)');
  }
  if (
    parsed.search !== '' ||
    parsed.hash !== '' ||
    parsed.username !== '' ||
    parsed.password !== ''
  ) {
    throw new TypeError('url must not carry a query, a fragment or user info');
  }
  if (
    parsed.protocol === 'http:' &&
    credential &&
    !allowInsecureHttp &&
    !LOOPBACK_HOST_PATTERN.test(parsed.hostname)
  ) {
    throw new TypeError(
      'plain http carries a credential in clear: use https, a loopback host, or allowInsecureHttp',
    );
  }
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
}

const NO_CACHE: SecretCacheControl = { invalidate() {}, size: 0 };

/** Makes a client. Nothing is sent until the first call. */
export function createClient(options: ClientOptions): AgentpackClient {
  if (typeof options !== 'object' || options === null) throw new TypeError('createClient(options)');
  const baseUrl = baseUrlOf(
    options.url,
    options.credential !== undefined,
    options.allowInsecureHttp === true,
  );
  const now = options.now ?? (() => Date.now());
  const prepared = prepareCredential(options.credential);
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError('timeoutMs must be a positive number of milliseconds');
  }
  const ready = (async () => {
    const backend = await cryptoBackend(options.crypto ?? 'auto');
    return { backend, credential: await completeCredential(prepared, backend) };
  })();
  ready.catch(() => {}); // reported by the first call, not as an unhandled rejection
  const transport = new Transport({
    baseUrl,
    fetch: options.fetch ?? ((url, init) => globalThis.fetch(url, init as RequestInit)),
    sleep: options.sleep ?? defaultSleep,
    random: options.random ?? Math.random,
    now,
    timeoutMs,
    retry: resolveRetry(options.retries),
    validateResponses: options.validateResponses === true,
    ready,
  });
  const cache =
    options.cache === undefined ? null : new SecretCache<SecretValue>(options.cache, now);

  const call = <R extends RpcName>(rpc: R) =>
    ((input?: unknown, callOptions?: CallOptions) =>
      transport.call(rpc, input, callOptions)) as unknown as Call<R>;

  /** Calls a write, then drops the secret's name from the cache (even when the write failed). */
  const writes = <R extends RpcName>(rpc: R) =>
    (async (input?: { name?: unknown }, callOptions?: CallOptions) => {
      try {
        return await transport.call(rpc, input, callOptions);
      } finally {
        if (typeof input?.name === 'string') cache?.invalidate(input.name);
      }
    }) as unknown as Call<R>;

  const sealingOf = async (rpc: string) => {
    const { credential } = await ready;
    if (credential?.sealing == null) {
      throw new AgentpackError({
        code: 'invalid_argument',
        message: `${rpc}: seal: true needs an enrolled device's credential (its sealing key opens the answer)`,
        details: { field: 'seal' },
        rpc,
        attempts: 0,
      });
    }
    return { backend: (await ready).backend, sealing: credential.sealing };
  };

  /** A value in clear: as sent, or opened from `sealed` with the device's sealing key. */
  const opened = async (
    rpc: string,
    answer: { value?: string; sealed?: string },
    askedSealed: boolean,
  ): Promise<string> => {
    if (typeof answer.value === 'string') {
      if (!askedSealed) return answer.value;
      // Asked sealed, answered in clear: whatever changed the answer on the way saw the value.
      throw new AgentpackError({
        code: 'bad_response',
        message: `${rpc}: a sealed read was answered in clear`,
        rpc,
      });
    }
    const { backend, sealing } = await sealingOf(rpc);
    const box = fromBase64Url(answer.sealed);
    const bytes =
      box === null ? null : backend.openSealed(box, sealing.publicKey, sealing.secretKey);
    const text = bytes === null ? null : fromUtf8(bytes);
    if (text === null) {
      throw new AgentpackError({
        code: 'bad_response',
        message: `${rpc}: the sealed value does not open with this device's sealing key`,
        rpc,
      });
    }
    return text;
  };

  const sealByDefault = options.credential?.kind === 'enrolled';

  async function secretsGet(
    nameOrInput: string | RpcInput<'secrets/get'>,
    more: (SecretGetOptions & CallOptions) | undefined = {},
  ): Promise<SecretValue> {
    const { signal, timeoutMs: t, retries, cache: useCache, ...fields } = more;
    const input: RpcInput<'secrets/get'> =
      typeof nameOrInput === 'string' ? { ...fields, name: nameOrInput } : nameOrInput;
    const request = input.seal === undefined && sealByDefault ? { ...input, seal: true } : input;
    checkInput('secrets/get', ROUTES['secrets/get'].input, request);
    if (request.seal === true) await sealingOf('secrets/get');
    const key = SecretCache.key(request.name, request.owner, request.version);
    if (cache !== null && useCache !== false) {
      const hit = cache.get(key);
      if (hit !== undefined) return { ...hit };
    }
    const callOptions: CallOptions = {
      ...(signal === undefined ? {} : { signal }),
      ...(t === undefined ? {} : { timeoutMs: t }),
      ...(retries === undefined ? {} : { retries }),
    };
    const answer = await transport.call('secrets/get', request, callOptions);
    const {
      sealed: _sealed,
      value: _value,
      ...meta
    } = answer as typeof answer & {
      sealed?: string;
      value?: string;
    };
    const result = {
      ...meta,
      value: await opened('secrets/get', answer, request.seal === true),
    } as SecretValue;
    cache?.set(key, request.name, result);
    return { ...result };
  }

  async function secretsPut(
    nameOrInput: string | RpcInput<'secrets/put'>,
    valueOrOptions?: string | CallOptions,
    more: SecretPutOptions = {},
  ): Promise<RpcOutput<'secrets/put'>> {
    let input: RpcInput<'secrets/put'>;
    let callOptions: CallOptions;
    if (typeof nameOrInput === 'string') {
      const { signal, timeoutMs: t, retries, ...fields } = more;
      input = { ...fields, name: nameOrInput, value: valueOrOptions as string };
      callOptions = {
        ...(signal === undefined ? {} : { signal }),
        ...(t === undefined ? {} : { timeoutMs: t }),
        ...(retries === undefined ? {} : { retries }),
      };
    } else {
      input = nameOrInput;
      callOptions = (valueOrOptions as CallOptions | undefined) ?? {};
    }
    return writes('secrets/put')(input, callOptions);
  }

  async function secretsResolve(
    input: RpcInput<'secrets/resolve'>,
    callOptions?: CallOptions,
  ): Promise<{ values: ResolvedValue[] }> {
    const request = input?.seal === undefined && sealByDefault ? { ...input, seal: true } : input;
    checkInput('secrets/resolve', ROUTES['secrets/resolve'].input, request);
    if (request.seal === true) await sealingOf('secrets/resolve');
    const answer = await transport.call('secrets/resolve', request, callOptions);
    const values: ResolvedValue[] = [];
    for (const item of answer.values) {
      const {
        sealed: _sealed,
        value: _value,
        ...meta
      } = item as typeof item & {
        sealed?: string;
        value?: string;
      };
      values.push({
        ...meta,
        value: await opened('secrets/resolve', item, request.seal === true),
      } as ResolvedValue);
    }
    return { values };
  }

  async function runsStart(
    input: Omit<RpcInput<'runs/spawn'>, 'public_key'>,
    callOptions?: CallOptions,
  ): Promise<StartedRun> {
    const { backend } = await ready;
    const seed = randomBytes(32);
    const run = await transport.call(
      'runs/spawn',
      { ...input, public_key: toBase64Url(backend.ed25519PublicKey(seed)) },
      callOptions,
    );
    const credential: RunCredential = { kind: 'run', runId: run.run_id, key: seed };
    return { run, credential, client: client.withCredential(credential) };
  }

  const client: AgentpackClient = {
    url: baseUrl,
    credentialKind: options.credential?.kind ?? null,
    cache: cache ?? NO_CACHE,
    agents: {
      create: call('agents/create'),
      get: call('agents/get'),
      list: call('agents/list'),
      disable: call('agents/disable'),
      enable: call('agents/enable'),
      retire: call('agents/retire'),
    },
    device: {
      issue: call('device/issue'),
      revoke: call('device/revoke'),
      list: call('device/list'),
      enroll: call('device/enroll'),
      enrollments: { create: call('device/enrollments/create') },
    },
    attestations: { verify: call('attestations/verify') },
    delegate: call('delegate'),
    delegations: {
      create: call('delegate'),
      revoke: call('delegate/revoke'),
      list: call('delegations/list'),
    },
    secrets: {
      get: secretsGet as AgentpackClient['secrets']['get'],
      put: secretsPut as AgentpackClient['secrets']['put'],
      list: call('secrets/list'),
      metadata: call('secrets/metadata'),
      delete: writes('secrets/delete'),
      undelete: writes('secrets/undelete'),
      destroy: writes('secrets/destroy'),
      resolve: secretsResolve,
      grant: writes('secrets/grant'),
      ungrant: writes('secrets/ungrant'),
    },
    tokens: { register: call('tokens/register') },
    settings: { list: call('settings/list'), set: call('settings/set') },
    runs: {
      spawn: call('runs/spawn'),
      start: runsStart,
      complete: call('runs/complete'),
      revoke: call('runs/revoke'),
      token: call('runs/token'),
      list: call('runs/list'),
    },
    issuers: {
      put: call('issuers/put'),
      list: call('issuers/list'),
      delete: call('issuers/delete'),
    },
    roles: {
      put: call('roles/put'),
      get: call('roles/get'),
      list: call('roles/list'),
      delete: call('roles/delete'),
    },
    auth: { exchange: call('auth/exchange') },
    audit: { query: call('audit/query') },
    wellKnown: {
      identity: (o) => transport.call('.well-known/agentpack-identity', {}, o),
      jwks: (o) => transport.call('.well-known/jwks.json', {}, o),
      openidConfiguration: (o) => transport.call('.well-known/openid-configuration', {}, o),
      run: async (runId, o) => {
        checkInput('.well-known/agentpack-agent-identity', runIdField, runId);
        return transport.call('.well-known/agentpack-agent-identity', {}, o, runId);
      },
    },
    health: (o) => transport.call('healthz', {}, o),
    openapi: (o) => transport.call('openapi.json', {}, o),
    call: (rpc, input, o) => {
      if (rpc === 'secrets/get') return secretsGet(input as RpcInput<'secrets/get'>, o) as never;
      if (rpc === 'secrets/resolve') {
        return secretsResolve(input as RpcInput<'secrets/resolve'>, o) as never;
      }
      if (rpc === '.well-known/agentpack-agent-identity') {
        throw new TypeError("call: use wellKnown.run(runId) for a run's identity document");
      }
      const target = ROUTES[rpc];
      if (target === undefined) throw new TypeError(`call: unknown RPC ${JSON.stringify(rpc)}`);
      return (
        rpc.startsWith('secrets/') && rpc !== 'secrets/list' && rpc !== 'secrets/metadata'
          ? writes(rpc)
          : call(rpc)
      )(input as never, o) as never;
    },
    withCredential: (credential) =>
      createClient({
        ...optionsWithout(options),
        ...(credential === undefined ? {} : { credential }),
      }),
    withDelegation: (delegationId) => {
      if (options.credential === undefined) throw new TypeError('withDelegation: no credential');
      return createClient({
        ...optionsWithout(options),
        credential: withDelegation(options.credential, delegationId),
      });
    },
  };
  return client;
}

function optionsWithout(options: ClientOptions): Omit<ClientOptions, 'credential'> {
  const { credential: _credential, ...rest } = options;
  return rest;
}

/** The sealing public key derived (or checked) with the backend. */
async function completeCredential(
  prepared: PreparedCredential | null,
  backend: CryptoBackend,
): Promise<ReadyCredential | null> {
  if (prepared === null) return null;
  if (prepared.sealing === null) return { ...prepared, sealing: null };
  const derived = backend.x25519PublicKey(prepared.sealing.secretKey);
  const given = prepared.sealing.publicKey;
  if (given !== null && !given.every((b, i) => b === derived[i])) {
    throw new TypeError('sealingPublicKey is not the public half of sealingKey');
  }
  return { ...prepared, sealing: { publicKey: derived, secretKey: prepared.sealing.secretKey } };
}
