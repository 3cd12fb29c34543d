/**
 * The cryptography the client needs, behind one interface with two implementations:
 *
 * - `node`: the protocol package's own code on node:crypto (OpenSSL) — the very `signRequest`
 *   and `openSealed` the service, the CLI and the tests use. Loaded with a dynamic import only
 *   where node:crypto is present, so no other runtime ever sees a `node:` import.
 * - `portable`: pure JavaScript (@noble/curves, @noble/hashes, tweetnacl) over Web Crypto's
 *   getRandomValues, for runtimes without node:crypto (browsers, workers). The tests hold it to
 *   the node implementation byte for byte and run it against the real service.
 *
 * `auto` (the default) picks `node` where it loads, else `portable`.
 */
import { portableBackend } from './portable.js';

/** Which implementation: `auto` (default), or one forced (tests, unusual runtimes). */
export type CryptoChoice = 'auto' | 'node' | 'portable';

/** What a signed request carries. */
export interface SignedHeaders {
  'x-agentpack-timestamp': string;
  'x-agentpack-nonce': string;
  'x-agentpack-signature': string;
  'x-agentpack-delegation'?: string;
}

export interface SignInput {
  method: string;
  /** The route path as the API names it (`/secrets/get`). */
  path: string;
  /** The exact body bytes sent. */
  body: Uint8Array;
  /** The 32-byte Ed25519 seed. */
  seed: Uint8Array;
  nowMs: number;
  delegation?: string | undefined;
  /** A nonce to use instead of fresh random bytes (known-answer tests only). */
  nonce?: string;
}

export interface CryptoBackend {
  readonly name: 'node' | 'portable';
  /** The signed-request headers (v1, or v2 with a delegation) for one attempt: a fresh nonce. */
  signRequest(input: SignInput): SignedHeaders;
  /** libsodium's crypto_box_seal_open; null when the box does not open with this key pair. */
  openSealed(sealed: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null;
  /** Ed25519 (RFC 8032) verification; never throws. */
  verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** ES256 verification of a raw r‖s signature with the P-256 point (x, y); never throws. */
  verifyP256(
    point: { x: Uint8Array; y: Uint8Array },
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean;
  /** The Ed25519 public key of a seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** The X25519 public key of a private key. */
  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
}

let nodeBackend: Promise<CryptoBackend | null> | undefined;

/** True where node:crypto can be expected (Node, and runtimes that say they are Node-compatible). */
function nodeLike(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  const buffer = (globalThis as { Buffer?: unknown }).Buffer;
  return typeof proc?.versions?.node === 'string' && typeof buffer === 'function';
}

function loadNode(): Promise<CryptoBackend | null> {
  nodeBackend ??= nodeLike()
    ? import('./node.js').then(
        (m) => m.nodeBackend,
        () => null,
      )
    : Promise.resolve(null);
  return nodeBackend;
}

/** The backend for `choice`; `node` throws where node:crypto cannot be loaded. */
export async function cryptoBackend(choice: CryptoChoice = 'auto'): Promise<CryptoBackend> {
  if (choice === 'portable') return portableBackend;
  const node = await loadNode();
  if (node !== null) return node;
  if (choice === 'node')
    throw new Error('crypto: "node" was asked for, but node:crypto is not available here');
  return portableBackend;
}
