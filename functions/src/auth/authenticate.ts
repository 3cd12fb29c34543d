/**
 * Headers → {@link Principal}. Exactly one primary credential per request (bridge key, device
 * key or capability token), optionally with a delegation. A repeated or malformed credential
 * header is 400, a credential that does not verify is 401, a disabled agent or an unusable
 * delegation is 403. Every refusal is logged with a reason code (never the presented value)
 * and nothing is written to the store.
 */
import type { CoreDeps } from '../core/agents.js';
import { activateDelegation } from '../core/delegations.js';
import { authenticateDeviceKey } from '../core/device-keys.js';
import { ApiError } from '../core/errors.js';
import type { DelegatePrincipal, Principal, RunPrincipal } from '../core/principal.js';
import { RUN_ID_PATTERN, runStatus } from '../core/runs.js';
import {
  checkSignedRequest,
  SIGNATURE_HEADERS,
  type SignatureParts,
} from '../core/signed-requests.js';
import { readSetting } from '../core/settings.js';
import type { HttpRequest } from '../http/types.js';
import type { Logger } from '../ports/logger.js';
import type { TokenVerifier } from '../tokens/verify.js';
import type { BridgeKeyring } from './bridge-keys.js';

/** The credential headers this service reads. */
export const CREDENTIAL_HEADERS = {
  bridge: 'x-agentpack-key',
  device: 'x-agentpack-device-key',
  bearer: 'authorization',
  delegation: 'x-agentpack-delegation',
  run: 'x-agentpack-run',
} as const;

/** The `WWW-Authenticate` challenge sent with every 401. */
export const WWW_AUTHENTICATE =
  'Bearer realm="agentpack-identity", AgentpackKey realm="agentpack-identity"';

export interface AuthDeps extends CoreDeps {
  bridgeKeys: BridgeKeyring;
  /** Null when no capability keys are configured: every bearer token is then refused. */
  tokens: TokenVerifier | null;
  logger: Logger;
}

type Headers = HttpRequest['headers'];

/** Printable ASCII without spaces: anything else in a credential header is malformed. */
const CREDENTIAL_VALUE = /^[\x21-\x7e]{1,512}$/;
/** `Bearer <compact JWS>`; the scheme is case-insensitive (RFC 7235). */
const BEARER = /^bearer ([A-Za-z0-9_.-]{1,8192})$/i;

export class Authenticator {
  constructor(private readonly deps: AuthDeps) {}

  private fail(path: string, credential: string, reason: string, error: ApiError): never {
    this.deps.logger.warn('auth.failed', { credential, reason, path });
    throw error;
  }

  /** A 401 whose reason goes to the log, not to the caller. */
  private refuse(path: string, credential: string, reason: string): never {
    return this.fail(
      path,
      credential,
      reason,
      new ApiError('unauthenticated', 'the credential is not valid'),
    );
  }

  private single(path: string, headers: Headers, name: string): string | undefined {
    const values = headers[name];
    if (values === undefined || values.length === 0) return undefined;
    if (values.length > 1) {
      this.fail(
        path,
        name,
        'repeated_header',
        new ApiError('invalid_argument', `the ${name} header must appear once`),
      );
    }
    return values[0];
  }

  /**
   * Verifies the request's credentials. Returns null when the request carries none (the caller
   * decides whether the route is public). Never caches a device key or a delegation: both are
   * read from the store on every request, so revocation and disabling hold from the next one.
   */
  async authenticate(request: HttpRequest): Promise<Principal | null> {
    const { path, headers } = request;
    const bridge = this.single(path, headers, CREDENTIAL_HEADERS.bridge);
    const device = this.single(path, headers, CREDENTIAL_HEADERS.device);
    const bearer = this.single(path, headers, CREDENTIAL_HEADERS.bearer);
    const delegation = this.single(path, headers, CREDENTIAL_HEADERS.delegation);
    const run = this.single(path, headers, CREDENTIAL_HEADERS.run);
    const present = [bridge, device, bearer, run].filter((v) => v !== undefined).length;
    if (present > 1) {
      this.fail(
        path,
        'multiple',
        'ambiguous',
        new ApiError('invalid_argument', 'send exactly one credential per request'),
      );
    }
    if (present === 0) {
      if (delegation !== undefined) {
        this.fail(
          path,
          'delegation',
          'no_credential',
          new ApiError('unauthenticated', "a delegation needs the delegate's own credential"),
        );
      }
      return null;
    }
    if (bridge !== undefined) {
      if (delegation !== undefined) {
        this.fail(
          path,
          'delegation',
          'with_bridge',
          new ApiError('invalid_argument', 'the bridge key cannot present a delegation'),
        );
      }
      if (!CREDENTIAL_VALUE.test(bridge)) this.refuse(path, 'bridge', 'malformed');
      const id = this.deps.bridgeKeys.match(bridge);
      if (id === null) this.refuse(path, 'bridge', 'unknown');
      return { kind: 'bridge', bridge_key_id: id };
    }
    if (run !== undefined) {
      if (delegation !== undefined) {
        this.fail(
          path,
          'delegation',
          'with_run',
          new ApiError('invalid_argument', 'a run cannot present a delegation'),
        );
      }
      return this.run(request, run);
    }
    const principal =
      device !== undefined ? await this.device(request, device) : await this.token(path, bearer!);
    if (delegation === undefined) return principal;
    return this.delegated(path, principal, delegation);
  }

  /** The signed-request headers: all three, none, or some (malformed). */
  private signatureParts(request: HttpRequest): SignatureParts | 'none' | 'partial' {
    const { path, headers } = request;
    const timestamp = this.single(path, headers, SIGNATURE_HEADERS.timestamp);
    const nonce = this.single(path, headers, SIGNATURE_HEADERS.nonce);
    const signature = this.single(path, headers, SIGNATURE_HEADERS.signature);
    if (timestamp !== undefined && nonce !== undefined && signature !== undefined) {
      return { timestamp, nonce, signature };
    }
    return timestamp === undefined && nonce === undefined && signature === undefined
      ? 'none'
      : 'partial';
  }

  private async device(request: HttpRequest, presented: string): Promise<DelegatePrincipal> {
    const { path } = request;
    if (!CREDENTIAL_VALUE.test(presented)) this.refuse(path, 'device', 'malformed');
    const result = await authenticateDeviceKey(this.deps, presented);
    if (!result.ok) {
      if (result.reason === 'agent_disabled') {
        this.fail(
          path,
          'device',
          result.reason,
          new ApiError('permission_denied', 'the agent is disabled'),
        );
      }
      return this.refuse(path, 'device', result.reason);
    }
    const parts = this.signatureParts(request);
    if (parts !== 'none') {
      if (parts === 'partial') this.refuse(path, 'device', 'malformed_signature_headers');
      const refusal = await checkSignedRequest(this.deps, result.doc, request, parts);
      if (refusal !== null) this.refuse(path, 'device', refusal);
    } else if (
      typeof result.doc.signing_public_key === 'string' &&
      (await readSetting(this.deps.store, 'device.require_signed_requests'))
    ) {
      // Policy: an enrolled device's bearer key alone is useless once signatures are required.
      this.refuse(path, 'device', 'signature_required');
    }
    return result.principal;
  }

  /**
   * A run: its id plus a request signed by the run's own key (always required: a run id alone
   * proves nothing). The run and every ancestor must be live, and its agent enabled.
   */
  private async run(request: HttpRequest, runId: string): Promise<RunPrincipal> {
    const { path } = request;
    if (!RUN_ID_PATTERN.test(runId)) this.refuse(path, 'run', 'malformed');
    const doc = await this.deps.store.get('runs', runId);
    if (doc === null) this.refuse(path, 'run', 'unknown');
    const status = await runStatus(this.deps.store, doc, this.deps.clock.now());
    if (status !== 'active') this.refuse(path, 'run', status);
    const parts = this.signatureParts(request);
    if (parts === 'none' || parts === 'partial') this.refuse(path, 'run', 'signature_required');
    const refusal = await checkSignedRequest(
      this.deps,
      { key_id: doc.run_id, signing_public_key: doc.public_key },
      request,
      parts,
    );
    if (refusal !== null) this.refuse(path, 'run', refusal);
    const agent = await this.deps.store.get('agents', doc.agent_id);
    if (agent === null || agent.disabled) {
      this.fail(
        path,
        'run',
        'agent_disabled',
        new ApiError('permission_denied', 'the agent is disabled'),
      );
    }
    return {
      kind: 'run',
      agent_id: doc.agent_id,
      run_id: doc.run_id,
      root_run_id: doc.root_run_id,
      lineage: doc.lineage,
      scope: doc.scope,
      expires_at: doc.expires_at,
    };
  }

  /**
   * A capability token: verified against the pinned keys with no store read. Its agent is then
   * read once, because the RPC it calls still refuses a disabled agent.
   */
  private async token(path: string, header: string): Promise<DelegatePrincipal> {
    const m = BEARER.exec(header);
    if (m === null) this.refuse(path, 'token', 'malformed');
    if (this.deps.tokens === null) this.refuse(path, 'token', 'no_keys_configured');
    const result = this.deps.tokens.verify(m[1]!, this.deps.clock.now());
    if (!result.ok) this.refuse(path, 'token', result.reason);
    const { claims, kid } = result;
    const agent = await this.deps.store.get('agents', claims.sub);
    if (agent === null || agent.disabled) {
      this.fail(
        path,
        'token',
        agent === null ? 'agent_missing' : 'agent_disabled',
        new ApiError('permission_denied', 'the agent is disabled or unknown'),
      );
    }
    return { kind: 'token', agent_id: claims.sub, jti: claims.jti, kid, scope: claims.scope };
  }

  private async delegated(
    path: string,
    delegate: DelegatePrincipal,
    id: string,
  ): Promise<DelegatePrincipal> {
    const result = await activateDelegation(this.deps.store, this.deps.clock.now(), delegate, id);
    if (!result.ok) {
      this.fail(
        path,
        'delegation',
        result.reason,
        new ApiError('permission_denied', 'the delegation cannot be used'),
      );
    }
    return { ...delegate, delegation: result.delegation };
  }
}
