/**
 * The deployed shape: one HTTPS Cloud Function (2nd gen), `identity`. This file only wires the
 * trigger; the handler lives in `cloud/identity-handler.ts` and is tested without it.
 */
import { onInit } from 'firebase-functions';
import { onRequest } from 'firebase-functions/https';
import { defineSecret } from 'firebase-functions/params';
import { functionsLogger } from './adapters/functions-logger.js';
import { cloudService } from './cloud/identity-handler.js';

/** Comma-separated bridge keys in Secret Manager (several at once during a rotation). */
const bridgeKeys = defineSecret('AGENTPACK_BRIDGE_KEYS');
/** The key-encryption key of secrets at rest: 32 random bytes, unpadded base64url. */
const secretsKek = defineSecret('AGENTPACK_SECRETS_KEK');

const service = cloudService({
  env: process.env,
  secrets: () => ({
    AGENTPACK_BRIDGE_KEYS: bridgeKeys.value(),
    AGENTPACK_SECRETS_KEK: secretsKek.value(),
  }),
  logger: functionsLogger,
});

onInit(() => service.init());

export const identity = onRequest(
  // The service authenticates every request itself, so the function is publicly invokable.
  { secrets: [bridgeKeys, secretsKek], invoker: 'public', concurrency: 80 },
  (req, res) => service.handle(req, res),
);
