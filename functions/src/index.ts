/**
 * The deployed shape: one HTTPS Cloud Function (2nd gen), `identity`. This file only wires the
 * trigger; the handler lives in `cloud/identity-handler.ts` and is tested without it.
 */
// Narrow entry points: the package root loads every trigger type (~0.4 s of cold start).
import { onInit } from 'firebase-functions/core';
import { onRequest } from 'firebase-functions/https';
import { defineSecret, defineString } from 'firebase-functions/params';
import { functionsLogger } from './adapters/functions-logger.js';
import { cloudService } from './cloud/identity-handler.js';

/** Comma-separated bridge keys in Secret Manager (several at once during a rotation). */
const bridgeKeys = defineSecret('AGENTPACK_BRIDGE_KEYS');

/**
 * The key of the digests device keys and enrollment codes are stored under (32 bytes, unpadded
 * base64url). In Secret Manager, never in the store: a row written into Firestore by someone
 * without it authenticates nothing.
 */
const digestKey = defineSecret('AGENTPACK_DIGEST_KEY');

// The Cloud KMS CryptoKey that wraps the data keys of secrets. Not a secret (a resource name):
// a deploy parameter, which Cloud Functions hands the instance as the environment variable of
// the same name, where the configuration reads and checks it at cold start. Emulators may give
// AGENTPACK_SECRETS_KEK in the environment instead.
defineString('AGENTPACK_KMS_KEY', {
  description:
    'Cloud KMS CryptoKey for secrets: projects/P/locations/L/keyRings/R/cryptoKeys/K (the function needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it)',
});

// The issuer of run tokens (`iss`) and of the OIDC discovery document: the https URL the
// function is reached at (its Cloud Run URL, or a custom domain in front of it).
defineString('AGENTPACK_ISSUER_URL', {
  description:
    'The https URL the identity function is reached at (the iss of run tokens), without a trailing slash',
});

// The online signing key of run tokens: a Cloud KMS CryptoKeyVersion of purpose ASYMMETRIC_SIGN,
// EC_SIGN_P256_SHA256 (the function needs roles/cloudkms.signerVerifier on its key, and
// cloudkms.cryptoKeyVersions.list to publish the key's other enabled versions). Emulators may
// give AGENTPACK_SIGNING_KEY (a JWKS of private P-256 keys) in the environment instead.
defineString('AGENTPACK_KMS_SIGNING_KEY', {
  description:
    'Cloud KMS CryptoKeyVersion that signs run tokens: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N',
});

const service = cloudService({
  env: process.env,
  secrets: () => ({
    AGENTPACK_BRIDGE_KEYS: bridgeKeys.value(),
    AGENTPACK_DIGEST_KEY: digestKey.value(),
  }),
  logger: functionsLogger,
});

onInit(() => service.init());

export const identity = onRequest(
  // The service authenticates every request itself, so the function is publicly invokable.
  { secrets: [bridgeKeys, digestKey], invoker: 'public', concurrency: 80 },
  (req, res) => service.handle(req, res),
);
