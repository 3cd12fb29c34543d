/**
 * The credentials of the OpenAPI document (routes/openapi.ts): each credential header as a
 * security scheme, and the header sets each caller kind of a route's policy presents.
 */
import { CREDENTIAL_HEADERS, SIGNED_REQUEST_HEADERS } from '@agentpack-identity/protocol';
import type { CallerKind } from '../core/principal.js';
import type { Route } from './route.js';

export type SecurityRequirement = Record<string, string[]>;

/** The credential headers, as OpenAPI security schemes. */
export const SECURITY_SCHEMES = {
  bridgeKey: {
    type: 'apiKey',
    in: 'header',
    name: CREDENTIAL_HEADERS.bridge,
    description:
      'The project bridge key (operators, the MTA): mints agents and provisions their keys and secrets, never reads a value.',
  },
  deviceKey: {
    type: 'apiKey',
    in: 'header',
    name: CREDENTIAL_HEADERS.device,
    description:
      'A device key (`apdk_...`): one agent. An enrolled device also signs its requests (the request-signature schemes), which `device.require_signed_requests` makes mandatory.',
  },
  capabilityToken: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'A capability token (`typ: agentpack-cap+jwt`, EdDSA): one agent, for the RPCs in its `scope`; verified offline against the keys of `/.well-known/agentpack-identity`.',
  },
  delegation: {
    type: 'apiKey',
    in: 'header',
    name: CREDENTIAL_HEADERS.delegation,
    description:
      "A delegation id (`dg_...`), with the delegate's own device key or capability token: act for the delegating agent within the delegation's scope.",
  },
  run: {
    type: 'apiKey',
    in: 'header',
    name: CREDENTIAL_HEADERS.run,
    description: "A run id (`run_...`), with the request signed by the run's own key.",
  },
  requestTimestamp: {
    type: 'apiKey',
    in: 'header',
    name: SIGNED_REQUEST_HEADERS.timestamp,
    description: 'Signed request: unix seconds, within 60 s of the server clock.',
  },
  requestNonce: {
    type: 'apiKey',
    in: 'header',
    name: SIGNED_REQUEST_HEADERS.nonce,
    description: 'Signed request: at least 16 random bytes, base64url, never repeated.',
  },
  requestSignature: {
    type: 'apiKey',
    in: 'header',
    name: SIGNED_REQUEST_HEADERS.signature,
    description:
      'Signed request: Ed25519 over `agentpack-request-v1\\n<METHOD>\\n<path>\\n<timestamp>\\n<nonce>\\n<base64url(SHA-256(body))>` (v2, with `\\n<delegation_id>` appended, on a delegated request), by the pinned key of the device or run.',
  },
} as const;

type SchemeName = keyof typeof SECURITY_SCHEMES;

const SIGNED: Partial<Record<SchemeName, string[]>> = {
  requestTimestamp: [],
  requestNonce: [],
  requestSignature: [],
};

/** The header sets each caller kind may present (alternatives: any one of them). */
export const SECURITY_OF: Readonly<Record<CallerKind, readonly SecurityRequirement[]>> = {
  bridge: [{ bridgeKey: [] }],
  device: [{ deviceKey: [] }, { deviceKey: [], ...SIGNED }],
  token: [{ capabilityToken: [] }],
  run: [{ run: [], ...SIGNED }],
  delegated: [
    { deviceKey: [], delegation: [] },
    { deviceKey: [], delegation: [], ...SIGNED },
    { capabilityToken: [], delegation: [] },
  ],
};

/** The security requirements of a route: its policy's caller kinds, or none. */
export function securityOf(route: Route): SecurityRequirement[] {
  if (!Array.isArray(route.policy)) return [];
  return route.policy.flatMap((kind: CallerKind) => SECURITY_OF[kind]);
}
