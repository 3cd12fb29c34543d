/**
 * The one rule for where the service may fetch an issuer's discovery document and keys: https,
 * or plain http to a loopback host (a local issuer, in tests and on a developer's machine); no
 * credentials in the URL; never a link-local address or the cloud metadata server (a GET there
 * is the classic request forgery target). Used when an issuer is trusted, for its `jwks_uri`,
 * and by the fetch itself.
 */
import { LOOPBACK_HOST_PATTERN } from '@agentpack-identity/protocol';

/** Hosts never fetched from, whatever the scheme. */
const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata', 'metadata.goog']);

/** True for a link-local IP literal: 169.254.0.0/16, fe80::/10. */
function isLinkLocal(hostname: string): boolean {
  if (/^169\.254\.\d{1,3}\.\d{1,3}$/.test(hostname)) return true;
  return /^\[fe[89ab][0-9a-f]?:/i.test(hostname);
}

/** True when the service may fetch `url`. */
export function isFetchableUrl(url: URL): boolean {
  if (url.username !== '' || url.password !== '') return false;
  const host = url.hostname.toLowerCase();
  if (METADATA_HOSTS.has(host.replace(/\.$/, '')) || isLinkLocal(host)) return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && LOOPBACK_HOST_PATTERN.test(host);
}

/** The URL of `text` when the service may fetch it, else null. */
export function fetchableUrl(text: unknown): URL | null {
  if (typeof text !== 'string' || !URL.canParse(text)) return null;
  const url = new URL(text);
  return isFetchableUrl(url) ? url : null;
}
