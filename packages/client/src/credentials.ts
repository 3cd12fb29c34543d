/**
 * The credentials a client can hold, one per client, and the headers each puts on a request.
 * Keys are given as raw bytes or as unpadded base64url (the form the CLI's key files hold).
 */
import { CREDENTIAL_HEADERS, CREDENTIAL_VALUE_PATTERN } from '@agentpack-identity/protocol';
import { keyBytes } from './crypto/bytes.js';

/** A raw 32-byte key: bytes, or unpadded base64url. */
export type KeyInput = Uint8Array | string;

/** The project's bridge key (`x-agentpack-key`): operators and the MTA. */
export interface BridgeCredential {
  kind: 'bridge';
  key: string;
}

/** An agent's bearer device key (`x-agentpack-device-key`). */
export interface DeviceCredential {
  kind: 'device';
  deviceKey: string;
  /** Act for the delegating agent under this delegation (`x-agentpack-delegation`). */
  delegation?: string;
}

/**
 * An enrolled device: its device key plus the private halves of its pinned keys. Every request
 * is signed with `signingSeed` (the protocol's request signing, v2 when delegated), and sealed
 * answers are opened with `sealingKey`; reads are sealed by default (`seal: false` to opt out).
 */
export interface EnrolledDeviceCredential {
  kind: 'enrolled';
  deviceKey: string;
  /** The Ed25519 signing seed (the CLI's `signing.key`). */
  signingSeed: KeyInput;
  /** The X25519 private sealing key (the CLI's `sealing.key`). */
  sealingKey: KeyInput;
  /** The X25519 public sealing key; derived from `sealingKey` when left out. */
  sealingPublicKey?: KeyInput;
  delegation?: string;
}

/** A run (`x-agentpack-run`), every request signed with the run's own Ed25519 key. */
export interface RunCredential {
  kind: 'run';
  runId: string;
  /** The run's Ed25519 seed (the CLI's `run.key`). */
  key: KeyInput;
}

/** A capability token (`authorization: Bearer <jws>`). */
export interface TokenCredential {
  kind: 'token';
  token: string;
  delegation?: string;
}

export type Credential =
  BridgeCredential | DeviceCredential | EnrolledDeviceCredential | RunCredential | TokenCredential;

/** A credential checked and decoded once, at `createClient`. */
export interface PreparedCredential {
  kind: Credential['kind'];
  /** The plain headers (without the signature, which is made per attempt). */
  headers: Record<string, string>;
  /** The Ed25519 seed that signs every request, for an enrolled device or a run. */
  signingSeed: Uint8Array | null;
  /**
   * The X25519 key pair that opens sealed answers, for an enrolled device (the public key null
   * until derived from the private one, when it was not given).
   */
  sealing: { publicKey: Uint8Array | null; secretKey: Uint8Array } | null;
  delegation: string | undefined;
}

/** A prepared credential whose sealing public key is known (derived or checked). */
export type ReadyCredential = Omit<PreparedCredential, 'sealing'> & {
  sealing: { publicKey: Uint8Array; secretKey: Uint8Array } | null;
};

function headerValue(value: unknown, what: string): string {
  if (typeof value !== 'string' || !CREDENTIAL_VALUE_PATTERN.test(value)) {
    throw new TypeError(`${what} must be 1 to 512 printable ASCII characters without spaces`);
  }
  return value;
}

/**
 * Checks and decodes a credential (synchronously, so a bad one fails `createClient`). Throws a
 * TypeError on bad input.
 */
export function prepareCredential(credential: Credential | undefined): PreparedCredential | null {
  if (credential !== undefined && (typeof credential !== 'object' || credential === null)) {
    throw new TypeError('credential must be an object with a kind');
  }
  if (credential === undefined) return null;
  const delegationOf = (c: { delegation?: string }) =>
    c.delegation === undefined ? undefined : headerValue(c.delegation, 'delegation');
  const base = { signingSeed: null, sealing: null, delegation: undefined };
  switch (credential.kind) {
    case 'bridge':
      return {
        ...base,
        kind: 'bridge',
        headers: { [CREDENTIAL_HEADERS.bridge]: headerValue(credential.key, 'the bridge key') },
      };
    case 'device': {
      const delegation = delegationOf(credential);
      return {
        ...base,
        kind: 'device',
        delegation,
        headers: {
          [CREDENTIAL_HEADERS.device]: headerValue(credential.deviceKey, 'the device key'),
          ...(delegation === undefined ? {} : { [CREDENTIAL_HEADERS.delegation]: delegation }),
        },
      };
    }
    case 'enrolled': {
      const secretKey = keyBytes(credential.sealingKey, 32, 'sealingKey');
      const publicKey =
        credential.sealingPublicKey === undefined
          ? null
          : keyBytes(credential.sealingPublicKey, 32, 'sealingPublicKey');
      return {
        kind: 'enrolled',
        // The delegation header is added by the signature (v2 covers it).
        headers: {
          [CREDENTIAL_HEADERS.device]: headerValue(credential.deviceKey, 'the device key'),
        },
        signingSeed: keyBytes(credential.signingSeed, 32, 'signingSeed'),
        sealing: { publicKey, secretKey },
        delegation: delegationOf(credential),
      };
    }
    case 'run':
      return {
        ...base,
        kind: 'run',
        headers: { [CREDENTIAL_HEADERS.run]: headerValue(credential.runId, 'the run id') },
        signingSeed: keyBytes(credential.key, 32, 'the run key'),
      };
    case 'token': {
      const delegation = delegationOf(credential);
      return {
        ...base,
        kind: 'token',
        delegation,
        headers: {
          [CREDENTIAL_HEADERS.bearer]: `Bearer ${headerValue(credential.token, 'the token')}`,
          ...(delegation === undefined ? {} : { [CREDENTIAL_HEADERS.delegation]: delegation }),
        },
      };
    }
    default:
      throw new TypeError(
        `unknown credential kind ${JSON.stringify((credential as { kind?: unknown }).kind)}`,
      );
  }
}

/** The same credential with another delegation (or none), for `withDelegation`. */
export function withDelegation(credential: Credential, delegation: string | undefined): Credential {
  if (credential.kind === 'bridge' || credential.kind === 'run') {
    throw new TypeError(`a ${credential.kind} credential cannot carry a delegation`);
  }
  const { delegation: _old, ...rest } = credential;
  return delegation === undefined ? rest : { ...rest, delegation };
}
