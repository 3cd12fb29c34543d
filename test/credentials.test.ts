/** The credential formats: device keys, bridge keys, and their checks. */
import { describe, expect, it } from 'vitest';
import { bridgeKeyring, parseBridgeKeys } from '../functions/src/auth/bridge-keys.js';
import { generateDeviceKey, isWellFormedDeviceKey } from '@agentpack-identity/protocol';
import { createDigester, legacyDigest, rekeyLegacyDigest } from '../functions/src/core/digest.js';

describe('device keys', () => {
  it('carry a fixed prefix and 256 random bits, and pass their own checksum', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateDeviceKey()));
    expect(keys.size).toBe(200);
    for (const key of keys) {
      expect(key).toMatch(/^apdk_[A-Za-z0-9_-]{49}$/);
      expect(Buffer.from(key.slice(5, 48), 'base64url')).toHaveLength(32);
      expect(isWellFormedDeviceKey(key)).toBe(true);
    }
  });

  it('fail the checksum when any single character changes', () => {
    const key = generateDeviceKey();
    for (let i = 5; i < key.length; i++) {
      const replacement = key[i] === 'A' ? 'B' : 'A';
      const mutated = key.slice(0, i) + replacement + key.slice(i + 1);
      expect(isWellFormedDeviceKey(mutated), `position ${i}`).toBe(false);
    }
    expect(isWellFormedDeviceKey(key.slice(0, -1))).toBe(false);
    expect(isWellFormedDeviceKey(`${key}A`)).toBe(false);
    expect(isWellFormedDeviceKey(key.replace('apdk_', 'apdx_'))).toBe(false);
  });

  it('are stored under a keyed digest: stable, per key, per kind, and not the plain hash', () => {
    const key = generateDeviceKey();
    const k1 = Buffer.alloc(32, 1);
    const digest = createDigester(k1);
    const id = digest('device_key', key);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(id).toBe(createDigester(Buffer.alloc(32, 1))('device_key', key));
    expect(id).not.toContain(key.slice(5, 20));
    expect(id).not.toBe(legacyDigest('device_key', key));
    // Another digest key gives another id: without the key, no id can be computed.
    expect(createDigester(Buffer.alloc(32, 2))('device_key', key)).not.toBe(id);
    expect(digest('enrollment_code', key)).not.toBe(id);
    // The migration reaches the same id from the plain digest alone.
    expect(rekeyLegacyDigest(k1, 'device_key', legacyDigest('device_key', key))).toBe(id);
    expect(() => createDigester(Buffer.alloc(16))).toThrow('32 bytes');
  });
});

describe('bridge keys', () => {
  const a = 'bridge-key-a-0123456789abcdefghijklmnopq';
  const b = 'bridge-key-b-0123456789abcdefghijklmnopq';

  it('parse a comma-separated list, trimming blanks', () => {
    expect(parseBridgeKeys(` ${a} ,, ${b} `)).toEqual([a, b]);
  });

  it.each([
    [undefined, 'empty'],
    ['', 'empty'],
    [' , ', 'empty'],
    ['tiny-key-value', 'shorter than 32'],
    [`${a},tiny-key-value`, 'key #2 is shorter'],
    [`${a.slice(0, 20)} ${a.slice(20)}x`, 'printable ASCII'],
  ])('refuse %j at start, naming the problem but not the key', (raw, message) => {
    let error: unknown;
    try {
      parseBridgeKeys(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(message);
    if (raw !== undefined && raw.trim() !== '') {
      for (const part of raw.split(',')) {
        if (part.trim().length > 0) expect((error as Error).message).not.toContain(part.trim());
      }
    }
  });

  it('match every configured key to its own non-secret id, and nothing else', () => {
    const ring = bridgeKeyring([a, b]);
    const idA = ring.match(a);
    const idB = ring.match(b);
    expect(idA).toMatch(/^bk_[0-9a-f]{12}$/);
    expect(idB).toMatch(/^bk_[0-9a-f]{12}$/);
    expect(idA).not.toBe(idB);
    expect(ring.match(`${a}x`)).toBeNull();
    expect(ring.match(a.slice(0, -1))).toBeNull();
    expect(ring.match('')).toBeNull();
  });
});
