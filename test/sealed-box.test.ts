/**
 * Sealed boxes interoperate with libsodium: what `sealTo` seals, libsodium-wrappers'
 * `crypto_box_seal_open` opens, and what `crypto_box_seal` seals, `openSealed` opens. Also: the
 * BLAKE2b-24 nonce against libsodium's `crypto_generichash(24, ...)` and a known answer computed
 * with Python's hashlib, each piece of the construction checked with libsodium's own
 * `crypto_box_open_easy`, any altered byte or wrong key refused, small-order keys refused on both
 * sides as libsodium does.
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { blake2b } from '@noble/hashes/blake2.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateDeviceKeys, X25519_SMALL_ORDER_ENCODINGS } from '@agentpack-identity/protocol';
import { openSealed, SEAL_OVERHEAD, sealNonce, sealTo } from '@agentpack-identity/protocol';

/** The parts of libsodium-wrappers used here (its ESM entry does not load on Node 20). */
interface Sodium {
  ready: Promise<void>;
  crypto_box_keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_box_seal_open(
    sealed: Uint8Array,
    publicKey: Uint8Array,
    secretKey: Uint8Array,
  ): Uint8Array;
  crypto_box_open_easy(
    box: Uint8Array,
    nonce: Uint8Array,
    publicKey: Uint8Array,
    secretKey: Uint8Array,
  ): Uint8Array;
  crypto_generichash(length: number, message: Uint8Array, key?: Uint8Array | null): Uint8Array;
}
const sodium = createRequire(import.meta.url)('libsodium-wrappers') as Sodium;

/** libsodium signals a failed open by throwing; null here, as `openSealed` does. */
function sodiumOpen(sealed: Uint8Array, pk: Uint8Array, sk: Uint8Array): Uint8Array | null {
  try {
    return sodium.crypto_box_seal_open(sealed, pk, sk);
  } catch {
    return null;
  }
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const concat = (a: Uint8Array, b: Uint8Array) => new Uint8Array([...a, ...b]);

beforeAll(async () => {
  await sodium.ready;
});

describe('interop with libsodium', () => {
  const messages = [
    new Uint8Array(0),
    utf8('x'),
    utf8('sk-live-0123456789 ünïcødé ✓'),
    new Uint8Array(32 * 1024).map((_, i) => (i * 31) & 0xff),
  ];

  it.each(messages.map((m) => [m.length, m] as const))(
    'libsodium opens what sealTo seals (%i bytes)',
    (_len, message) => {
      const kp = sodium.crypto_box_keypair();
      const sealed = sealTo(kp.publicKey, message);
      expect(sealed.length).toBe(message.length + SEAL_OVERHEAD);
      expect(SEAL_OVERHEAD).toBe(48);
      expect(hex(sodium.crypto_box_seal_open(sealed, kp.publicKey, kp.privateKey))).toBe(
        hex(message),
      );
    },
  );

  it.each(messages.map((m) => [m.length, m] as const))(
    'openSealed opens what libsodium seals (%i bytes)',
    (_len, message) => {
      const kp = sodium.crypto_box_keypair();
      const sealed = sodium.crypto_box_seal(message, kp.publicKey);
      const opened = openSealed(sealed, kp.publicKey, kp.privateKey);
      expect(opened).not.toBeNull();
      expect(hex(opened!)).toBe(hex(message));
    },
  );

  it('works with device keys made by node:crypto (raw JWK bytes are libsodium keys)', () => {
    const { sealing } = generateDeviceKeys();
    const message = utf8('to the device');
    const ours = sealTo(sealing.publicKey, message);
    expect(hex(sodium.crypto_box_seal_open(ours, sealing.publicKey, sealing.privateKey))).toBe(
      hex(message),
    );
    const theirs = sodium.crypto_box_seal(message, sealing.publicKey);
    expect(hex(openSealed(theirs, sealing.publicKey, sealing.privateKey)!)).toBe(hex(message));
  });

  it('is exactly crypto_box(message, blake2b-24(epk ‖ pk), pk, esk) after epk', () => {
    const kp = sodium.crypto_box_keypair();
    const message = utf8('piece by piece');
    const sealed = sealTo(kp.publicKey, message);
    const epk = sealed.subarray(0, 32);
    const nonce = sodium.crypto_generichash(24, concat(epk, kp.publicKey), null);
    const opened = sodium.crypto_box_open_easy(sealed.subarray(32), nonce, epk, kp.privateKey);
    expect(hex(opened)).toBe(hex(message));
  });

  it('uses a fresh ephemeral key for every box', () => {
    const kp = sodium.crypto_box_keypair();
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(hex(sealTo(kp.publicKey, utf8('same')).subarray(0, 32)));
    expect(seen.size).toBe(20);
  });

  it('round-trips any message both ways (property)', () => {
    const kp = sodium.crypto_box_keypair();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (message) => {
        const ours = sealTo(kp.publicKey, message);
        const theirs = sodium.crypto_box_seal(message, kp.publicKey);
        return (
          hex(sodium.crypto_box_seal_open(ours, kp.publicKey, kp.privateKey)) === hex(message) &&
          hex(openSealed(theirs, kp.publicKey, kp.privateKey) ?? new Uint8Array([1])) ===
            hex(message)
        );
      }),
      { numRuns: 100 },
    );
  });
});

describe('the nonce: BLAKE2b with a 24-byte output', () => {
  const epk = Uint8Array.from({ length: 32 }, (_, i) => i);
  const pk = Uint8Array.from({ length: 32 }, (_, i) => 32 + i);

  it('matches a known answer (Python hashlib.blake2b(digest_size=24))', () => {
    expect(hex(sealNonce(epk, pk))).toBe('aa054507b4916837a6d2b35b1ce7c525facdb7868ed55a8a');
  });

  it('matches libsodium crypto_generichash(24, epk ‖ pk)', () => {
    expect(hex(sealNonce(epk, pk))).toBe(hex(sodium.crypto_generichash(24, concat(epk, pk), null)));
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (a, b) => hex(sealNonce(a, b)) === hex(sodium.crypto_generichash(24, concat(a, b), null)),
      ),
      { numRuns: 200 },
    );
  });

  it('is not a truncated BLAKE2b-512', () => {
    const truncated = blake2b(concat(epk, pk), { dkLen: 64 }).subarray(0, 24);
    expect(hex(truncated)).toBe('2fc6e69fa26a89a5ed269092cb9b2a449a4409a7a44011ee');
    expect(hex(sealNonce(epk, pk))).not.toBe(hex(truncated));
  });
});

describe('refusals', () => {
  const kp = () => sodium.crypto_box_keypair();

  it('any altered byte makes the box unopenable, for us and for libsodium', () => {
    const { publicKey, privateKey } = kp();
    const sealed = sealTo(publicKey, utf8('tamper with me'));
    expect(openSealed(sealed, publicKey, privateKey)).not.toBeNull();
    for (let i = 0; i < sealed.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const altered = sealed.slice();
        altered[i]! ^= bit;
        expect(openSealed(altered, publicKey, privateKey), `byte ${i} ^ ${bit}`).toBeNull();
        expect(sodiumOpen(altered, publicKey, privateKey), `byte ${i} ^ ${bit}`).toBeNull();
      }
    }
  });

  it('a box altered anywhere does not open (property)', () => {
    const { publicKey, privateKey } = kp();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (message, at, mask) => {
          const sealed = sealTo(publicKey, message);
          sealed[at % sealed.length]! ^= mask;
          return openSealed(sealed, publicKey, privateKey) === null;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a truncated or extended box does not open', () => {
    const { publicKey, privateKey } = kp();
    const sealed = sealTo(publicKey, utf8('whole'));
    for (const length of [0, 1, 31, 32, 47, sealed.length - 1]) {
      expect(openSealed(sealed.subarray(0, length), publicKey, privateKey)).toBeNull();
    }
    expect(openSealed(concat(sealed, new Uint8Array([0])), publicKey, privateKey)).toBeNull();
    // The shortest valid box: an empty message.
    expect(openSealed(sealTo(publicKey, new Uint8Array(0)), publicKey, privateKey)).toEqual(
      new Uint8Array(0),
    );
  });

  it('the wrong key does not open it; nor does the right secret with another public key', () => {
    const a = kp();
    const b = kp();
    const sealed = sealTo(a.publicKey, utf8('for a only'));
    expect(openSealed(sealed, b.publicKey, b.privateKey)).toBeNull();
    expect(openSealed(sealed, b.publicKey, a.privateKey)).toBeNull(); // the nonce binds pk
    expect(openSealed(sealed, a.publicKey, b.privateKey)).toBeNull();
    expect(openSealed(sealed, a.publicKey, a.privateKey)).not.toBeNull();
  });

  it('refuses to seal to a small-order key, or a key of the wrong length', () => {
    expect(X25519_SMALL_ORDER_ENCODINGS).toHaveLength(14);
    for (const encoding of X25519_SMALL_ORDER_ENCODINGS) {
      expect(() => sealTo(Buffer.from(encoding, 'hex'), utf8('x')), encoding).toThrow(
        /small-order/,
      );
    }
    expect(() => sealTo(new Uint8Array(31), utf8('x'))).toThrow(TypeError);
    expect(() => sealTo(new Uint8Array(33), utf8('x'))).toThrow(TypeError);
    const { publicKey, privateKey } = kp();
    expect(() => openSealed(new Uint8Array(64), publicKey.subarray(1), privateKey)).toThrow(
      TypeError,
    );
  });

  it('refuses a box whose ephemeral key is of small order, though its tag is right', () => {
    // With a small-order epk the shared secret is all zeros: anyone can make such a box, and a
    // naive opener (tweetnacl alone) would accept it. libsodium refuses it; so must we.
    const { publicKey, privateKey } = kp();
    const lowlevel = (
      nacl as unknown as {
        lowlevel: {
          crypto_core_hsalsa20(o: Uint8Array, i: Uint8Array, k: Uint8Array, c: Uint8Array): number;
        };
      }
    ).lowlevel;
    for (const encoding of X25519_SMALL_ORDER_ENCODINGS) {
      const epk = new Uint8Array(Buffer.from(encoding, 'hex'));
      const k = new Uint8Array(32);
      lowlevel.crypto_core_hsalsa20(
        k,
        new Uint8Array(16),
        new Uint8Array(32),
        utf8('expand 32-byte k'),
      );
      const forged = concat(epk, nacl.box.after(utf8('forged'), sealNonce(epk, publicKey), k));
      // The forgery is well made: the all-zero shared key opens it...
      expect(nacl.box.open.after(forged.subarray(32), sealNonce(epk, publicKey), k)).not.toBeNull();
      // ...but neither libsodium nor we accept a small-order ephemeral key.
      expect(sodiumOpen(forged, publicKey, privateKey), encoding).toBeNull();
      expect(openSealed(forged, publicKey, privateKey), encoding).toBeNull();
    }
  });
});
