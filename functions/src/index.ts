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

const service = cloudService({
  env: process.env,
  bridgeKeys: () => bridgeKeys.value(),
  logger: functionsLogger,
});

onInit(() => service.init());

export const identity = onRequest(
  // The service authenticates every request itself, so the function is publicly invokable.
  { secrets: [bridgeKeys], invoker: 'public', concurrency: 80 },
  (req, res) => service.handle(req, res),
);
