/**
 * CRC32C, the integrity check of every Cloud KMS request and response: known answers (RFC 3720
 * appendix B.4 and the catalogue check value, in test/vectors/crc32c.json), and properties
 * against an independent bit-by-bit implementation.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../functions/src/adapters/crc32c.js';

const vectors = JSON.parse(
  readFileSync(new URL('./vectors/crc32c.json', import.meta.url), 'utf8'),
) as { cases: { name: string; hex: string; crc32c: number }[] };

/** The definition, one bit at a time (reflected Castagnoli polynomial). */
function reference(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  it.each(vectors.cases)('$name', ({ hex, crc32c: expected }) => {
    expect(crc32c(Buffer.from(hex, 'hex'))).toBe(expected);
  });

  it('has the catalogue check value: CRC32C("123456789") = 0xE3069283', () => {
    expect(crc32c(Buffer.from('123456789', 'ascii'))).toBe(0xe3069283);
    expect(vectors.cases.length).toBeGreaterThanOrEqual(8);
  });

  it('agrees with the bit-by-bit definition on any input, as an unsigned 32-bit number', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        const sum = crc32c(data);
        expect(sum).toBe(reference(data));
        expect(Number.isInteger(sum) && sum >= 0 && sum <= 0xffffffff).toBe(true);
      }),
    );
  });

  it('changes when any single bit of the input flips', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (data, at, bit) => {
          const mutated = Uint8Array.from(data);
          mutated[at % data.length]! ^= 1 << bit;
          expect(crc32c(mutated)).not.toBe(crc32c(data));
        },
      ),
    );
  });

  it('reads a Uint8Array view at its own offset, not its whole buffer', () => {
    const backing = Buffer.from('xx123456789yy', 'ascii');
    expect(crc32c(backing.subarray(2, 11))).toBe(0xe3069283);
  });
});
