/**
 * CRC32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF),
 * table-driven, one byte at a time. Cloud KMS uses it as the integrity check of every request
 * and response field it carries (`*_crc32c`), so a bit flipped between us and the key service
 * is caught before a corrupted data key is stored or used. Not a MAC: it detects accidents,
 * not attacks (AES-GCM and KMS's own authentication do that).
 */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * The CRC32C of `data`, as an unsigned 32-bit integer.
 *
 * @example
 * crc32c(Buffer.from('123456789')) === 0xe3069283
 */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
