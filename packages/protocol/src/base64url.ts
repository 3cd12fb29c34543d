/**
 * Canonical unpadded base64url: the one decoder for every encoded value of the protocol
 * (capability token segments, device and run keys, nonces, signatures, key files). Node's
 * decoder is lenient (it skips unknown characters, accepts padding, the `+/` alphabet and
 * non-zero trailing bits), so the bytes are re-encoded and compared: exactly one spelling of
 * each byte string passes. A token then cannot have several spellings with one signature, and
 * a pinned key and its fingerprint have one form.
 */

/**
 * Decodes canonical unpadded base64url of `min`..`max` bytes (any length when omitted), or
 * returns null. Never throws, whatever `text` is.
 *
 * @example
 * decodeBase64Url('AQID'); // Buffer [1, 2, 3]
 * decodeBase64Url('AQID='); // null: padded
 */
export function decodeBase64Url(text: unknown, min = 0, max = Infinity): Buffer | null {
  if (typeof text !== 'string') return null;
  if (Number.isFinite(max) && text.length > Math.ceil((max * 4) / 3)) return null;
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length < min || bytes.length > max || bytes.toString('base64url') !== text) {
    return null;
  }
  return bytes;
}

/** Encodes bytes as unpadded base64url, the wire form of every key and signature. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}
