/**
 * Headers → {@link Principal}. Exactly one primary credential per request (bridge key, device
 * key, capability token or run), optionally with a delegation (device key or token only). Each
 * kind has one verifier in `verifiers/`, listed in {@link VERIFIERS}; every refusal, whatever
 * its kind, goes through one place here: logged with a reason code (never the presented value)
 * and mapped to its error by the table in `refusals.ts`. Nothing is written to the store.
 */
import { CREDENTIAL_HEADERS } from '@agentpack-identity/protocol';
import type { Principal } from '../core/principal.js';
import type { HttpRequest } from '../ports/http.js';
import { refusalError, type Refusal } from './refusals.js';
import { singleHeader, type AuthDeps, type CredentialVerifier, type Verdict } from './verifier.js';
import { verifyBridgeKey } from './verifiers/bridge.js';
import { verifyDelegation } from './verifiers/delegation.js';
import { verifyDeviceKey } from './verifiers/device.js';
import { verifyRun } from './verifiers/run.js';
import { verifyCapabilityToken } from './verifiers/token.js';

export type { AuthDeps } from './verifier.js';

/** The `WWW-Authenticate` challenge sent with every 401. */
export const WWW_AUTHENTICATE =
  'Bearer realm="agentpack-identity", AgentpackKey realm="agentpack-identity"';

/** The primary credentials: header, and the verifier that turns its value into a principal. */
export const VERIFIERS = {
  bridge: { header: CREDENTIAL_HEADERS.bridge, verify: verifyBridgeKey },
  device: { header: CREDENTIAL_HEADERS.device, verify: verifyDeviceKey },
  token: { header: CREDENTIAL_HEADERS.bearer, verify: verifyCapabilityToken },
  run: { header: CREDENTIAL_HEADERS.run, verify: verifyRun },
} as const satisfies Record<Principal['kind'], { header: string; verify: CredentialVerifier }>;

type PrimaryKind = keyof typeof VERIFIERS;
const PRIMARY_KINDS = Object.keys(VERIFIERS) as PrimaryKind[];

export class Authenticator {
  constructor(private readonly deps: AuthDeps) {}

  /** Logs a refusal and throws its error: the one exit of every refused credential. */
  private refuse(path: string, refusal: Refusal): never {
    const credential = refusal.reason === 'repeated_header' ? refusal.header : refusal.credential;
    this.deps.logger.warn('auth.failed', { credential, reason: refusal.reason, path });
    throw refusalError(refusal);
  }

  private header(request: HttpRequest, name: string): string | undefined {
    const read = singleHeader(request, name);
    if ('refusal' in read) return this.refuse(request.path, { credential: name, ...read.refusal });
    return read.value;
  }

  private accept<P extends Principal>(path: string, credential: string, verdict: Verdict<P>): P {
    if (!verdict.ok) return this.refuse(path, { credential, ...verdict.refusal });
    return verdict.principal;
  }

  /**
   * Verifies the request's credentials. Returns null when the request carries none (the caller
   * decides whether the route is public). Never caches a device key or a delegation: both are
   * read from the store on every request, so revocation and disabling hold from the next one.
   */
  async authenticate(request: HttpRequest): Promise<Principal | null> {
    const { path } = request;
    const presented = PRIMARY_KINDS.map((kind) => ({
      kind,
      value: this.header(request, VERIFIERS[kind].header),
    })).filter((p): p is { kind: PrimaryKind; value: string } => p.value !== undefined);
    const delegation = this.header(request, CREDENTIAL_HEADERS.delegation);
    if (presented.length > 1) this.refuse(path, { credential: 'multiple', reason: 'ambiguous' });
    const primary = presented[0];
    if (primary === undefined) {
      if (delegation !== undefined) {
        this.refuse(path, { credential: 'delegation', reason: 'no_credential' });
      }
      return null;
    }
    if (delegation !== undefined && (primary.kind === 'bridge' || primary.kind === 'run')) {
      const reason = primary.kind === 'bridge' ? 'with_bridge' : 'with_run';
      this.refuse(path, { credential: 'delegation', reason });
    }
    const verifier: CredentialVerifier = VERIFIERS[primary.kind].verify;
    const principal = this.accept(
      path,
      primary.kind,
      await verifier(this.deps, request, primary.value),
    );
    if (delegation === undefined) return principal;
    if (principal.kind !== 'device' && principal.kind !== 'token') return principal; // checked above
    return this.accept(
      path,
      'delegation',
      await verifyDelegation(this.deps, principal, delegation),
    );
  }
}
