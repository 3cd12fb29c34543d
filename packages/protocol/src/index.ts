/**
 * `@agentpack-identity/protocol`: what the service, the CLI and clients must agree on byte for
 * byte — formats, grammars, request and response schemas, signed strings, the sealed box — and nothing that
 * does I/O. It depends on node:crypto, tweetnacl, @noble/hashes and zod only, never on
 * firebase-*, better-sqlite3 or a KMS client.
 */
export * from './attestation-signing.js';
export * from './base64url.js';
export * from './capability-token.js';
export * from './curve-keys.js';
export * from './device-identity.js';
export * from './credential-formats.js';
export * from './files.js';
export * from './grammar.js';
export * from './run-token.js';
export * from './run-view.js';
export * from './scope.js';
export * from './sealed-box.js';
export * from './request-signing.js';
export * from './requests/index.js';
export * from './responses/index.js';
