/**
 * The node backend: the protocol package's own signing and sealed-box code on node:crypto
 * (OpenSSL), the code the service and the CLI run. This module is loaded only by a dynamic
 * import where node:crypto is present (and is its own file in the package), so no other runtime
 * ever loads a `node:` module.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  ed25519PrivateKeyObject,
  encodeRawKey,
  openSealed,
  sealingPublicKeyOf,
  signingPublicKeyOf,
  signRequest,
} from '@agentpack-identity/protocol';
import type { CryptoBackend } from './backend.js';

/**
 * Private KeyObjects per seed array: importing one costs several signatures, and a client signs
 * every request with the same seed. Weak, so a dropped credential takes its key with it.
 */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

function privateKeyOf(seed: Uint8Array): KeyObject {
  let key = privateKeys.get(seed);
  if (key === undefined) {
    key = ed25519PrivateKeyObject(seed);
    privateKeys.set(seed, key);
  }
  return key;
}

export const nodeBackend: CryptoBackend = {
  name: 'node',
  signRequest: (input) =>
    signRequest({
      method: input.method,
      path: input.path,
      body: input.body,
      signingSeed: privateKeyOf(input.seed),
      nowMs: input.nowMs,
      delegation: input.delegation,
      ...(input.nonce === undefined ? {} : { nonce: input.nonce }),
    }),
  openSealed: (sealed, publicKey, secretKey) => openSealed(sealed, publicKey, secretKey),
  verifyEd25519(publicKey, message, signature) {
    try {
      const key = createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: encodeRawKey(publicKey) },
        format: 'jwk',
      });
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  },
  verifyP256(point, message, signature) {
    try {
      const key = createPublicKey({
        key: { kty: 'EC', crv: 'P-256', x: encodeRawKey(point.x), y: encodeRawKey(point.y) },
        format: 'jwk',
      });
      return verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  },
  ed25519PublicKey: (seed) => signingPublicKeyOf(seed),
  x25519PublicKey: (secretKey) => sealingPublicKeyOf(secretKey),
};
