/**
 * Bytes, text and base64url without Node's Buffer, so that everything on the client's runtime
 * path runs wherever `fetch` does (Node 20+, Deno, Bun, workers, browsers).
 *
 * The decoder is canonical, as the protocol's is: unpadded, the URL alphabet only, and no
 * stray bits in the last character, so that exactly one spelling of a byte string passes.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** Unpadded base64url of `bytes`. */
export function toBase64Url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out +=
      ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * The bytes of canonical unpadded base64url, or null (never throws): a padded, non-URL or
 * non-canonical spelling (stray low bits) is refused, as the protocol's decoder refuses it.
 */
export function fromBase64Url(text: unknown): Uint8Array | null {
  if (typeof text !== 'string' || text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const d = c < 128 ? DECODE[c]! : -1;
    if (d < 0) return null;
    value = (value << 6) | d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  if (bits > 0 && (value & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/** The bytes of a key given as bytes or as unpadded base64url, checked to be `length` long. */
export function keyBytes(key: Uint8Array | string, length: number, what: string): Uint8Array {
  const bytes = typeof key === 'string' ? fromBase64Url(key.trim()) : key;
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new TypeError(`${what} must be ${length} bytes (a Uint8Array or unpadded base64url)`);
  }
  return new Uint8Array(bytes); // a copy: the caller's array may be zeroed or reused
}

const encoder = new TextEncoder();
/** Policy: invalid UTF-8 is refused, never repaired, so a value reads as exactly what was sealed. */
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const utf8 = (text: string): Uint8Array => encoder.encode(text);

/** The text of UTF-8 bytes, or null when they are not valid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** `n` bytes from the runtime's CSPRNG (Web Crypto's getRandomValues, present on every target). */
export function randomBytes(n: number): Uint8Array {
  const webCrypto = (globalThis as { crypto?: { getRandomValues?<T extends Uint8Array>(a: T): T } })
    .crypto;
  if (typeof webCrypto?.getRandomValues !== 'function') {
    throw new Error('no secure random source: globalThis.crypto.getRandomValues is missing');
  }
  return webCrypto.getRandomValues(new Uint8Array(n));
}
