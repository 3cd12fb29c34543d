/**
 * A small Cloud KMS for tests: a real gRPC server (`@grpc/grpc-js`) speaking
 * `google.cloud.kms.v1.KeyManagementService` from the protos that ship inside
 * `@google-cloud/kms` (and the `google/api`, `google/longrunning` protos of its google-gax), so
 * the real client talks to it over the wire, exactly as it talks to Google.
 *
 * One symmetric CryptoKey with real AES-256-GCM keys per CryptoKeyVersion; a ciphertext starts
 * with the number of the version that made it, so Decrypt picks that version, as KMS does. It
 * checks the request CRC32Cs (with its own bit-by-bit CRC32C, independent of the one under
 * test) and answers the response ones honestly, unless told to corrupt the next answers. It
 * can rotate the primary version, answer UNAVAILABLE, fail a given method, or stop listening.
 *
 * And one asymmetric signing CryptoKey (purpose ASYMMETRIC_SIGN) with a real key pair per
 * version (P-256, or P-384 when asked): `AsymmetricSign` (ECDSA over the digest it is given,
 * computed here with BigInt arithmetic, so independent of node's own signing), `GetPublicKey`,
 * and `ListCryptoKeyVersions` (the `state=ENABLED` filter, pages) for both keys. Versions can
 * be added, disabled and enabled again; the signing answers can be spoiled in every way a
 * signer must catch.
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const FAKE_KMS_KEY =
  'projects/demo-agentpack/locations/global/keyRings/agentpack/cryptoKeys/secrets';

export const FAKE_KMS_SIGNING_KEY =
  'projects/demo-agentpack/locations/global/keyRings/agentpack/cryptoKeys/run-tokens';

/** How an answer is spoiled: a wrong checksum, changed bytes under an honest checksum of the original, or "not verified". */
export type Corruption = 'checksum' | 'data' | 'unverified';

/**
 * How an AsymmetricSign answer is spoiled: as {@link Corruption} (`unverified`: the digest
 * checksum not verified), or a signature made by another key under an honest checksum
 * (`other-key`), or the answer naming another version (`name`).
 */
export type SignCorruption = Corruption | 'other-key' | 'name';

/** How a GetPublicKey answer is spoiled: a wrong checksum, another key's PEM under the original's checksum, or another version's name. */
export type PublicKeyCorruption = 'checksum' | 'data' | 'name';

export type FakeSigningAlgorithm = 'EC_SIGN_P256_SHA256' | 'EC_SIGN_P384_SHA384';

export interface FakeKms {
  /** The port on 127.0.0.1. */
  readonly port: number;
  /** The CryptoKey it serves. */
  readonly keyName: string;
  /** The primary CryptoKeyVersion's name. */
  primary(): string;
  /** Adds a version and makes it primary; returns its name. Old versions still decrypt. */
  rotate(): string;
  /** Spoils the next `count` Encrypt or Decrypt answers (GetCryptoKey is left alone). */
  corruptNext(count?: number, how?: Corruption): void;
  /** While true, every call answers UNAVAILABLE. */
  setUnavailable(unavailable: boolean): void;
  /**
   * The next `count` calls of `method` (e.g. `ListCryptoKeyVersions`) answer the gRPC status
   * `code` (default INTERNAL, which the client does not retry: the calls stay countable).
   */
  failNext(method: string, count?: number, code?: number): void;
  /** Back to honest and available (spoilings and failures not yet used are dropped, the list page size is the default again); keys stay. */
  reset(): void;
  /**
   * Calls received, by method name (`Encrypt`, `Decrypt`, `GetCryptoKey`, `AsymmetricSign`,
   * `GetPublicKey`, `ListCryptoKeyVersions`: one per page), in order.
   */
  readonly calls: string[];
  /** The asymmetric signing CryptoKey it serves. */
  readonly signingKeyName: string;
  /** The name of the signing key's version `n` (whether it exists or not). */
  signingVersion(n: number): string;
  /** Every version of the signing key, oldest first, enabled or not. */
  signingVersions(): string[];
  /** Adds a version to the signing key (P-256 unless told), ENABLED; returns its name. */
  addSigningVersion(options?: { algorithm?: FakeSigningAlgorithm }): string;
  /** DISABLED: not listed as ENABLED; AsymmetricSign and GetPublicKey answer FAILED_PRECONDITION. */
  disableSigningVersion(name: string): void;
  enableSigningVersion(name: string): void;
  /** A signing version's public key. */
  signingPublicKey(name: string): KeyObject;
  /** Spoils the next `count` AsymmetricSign answers. */
  corruptNextSign(count?: number, how?: SignCorruption): void;
  /** Spoils the next `count` GetPublicKey answers. */
  corruptNextPublicKey(count?: number, how?: PublicKeyCorruption): void;
  /** ListCryptoKeyVersions answers at most this many versions a page when the request names no page size (default 100). */
  setListPageSize(size: number): void;
  /** Stops listening and drops connections (a KMS that cannot be reached). */
  stop(): Promise<void>;
}

/** CRC32C bit by bit: deliberately not the table-driven implementation under test. */
function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** The KMS protos from inside the installed client packages. */
function loadKmsService(): grpc.ServiceDefinition {
  const require = createRequire(import.meta.url);
  const kmsRoot = dirname(require.resolve('@google-cloud/kms/package.json'));
  // google-gax as the KMS client resolves it (it may be nested); its package.json is not
  // exported, so climb from its main file (build/src/index.js).
  const gaxMain = createRequire(join(kmsRoot, 'package.json')).resolve('google-gax');
  const gaxRoot = join(dirname(gaxMain), '..', '..');
  const definition = protoLoader.loadSync('google/cloud/kms/v1/service.proto', {
    includeDirs: [join(kmsRoot, 'build', 'protos'), join(gaxRoot, 'build', 'protos')],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as any;
  return loaded.google.cloud.kms.v1.KeyManagementService.service;
}

interface Int64 {
  value: string;
}

const failure = (code: grpc.status, details: string): Partial<grpc.StatusObject> => ({
  code,
  details,
});

/** Starts the fake on a free loopback port. */
export async function startFakeKms(
  keyName = FAKE_KMS_KEY,
  signingKeyName = FAKE_KMS_SIGNING_KEY,
): Promise<FakeKms> {
  const versions = new Map<number, Buffer>([[1, randomBytes(32)]]);
  let primary = 1;
  let unavailable = false;
  const spoil: Corruption[] = [];
  const calls: string[] = [];
  const failures: { method: string; code: number }[] = [];
  const versionName = (n: number) => `${keyName}/cryptoKeyVersions/${n}`;
  const signing = signingKey(signingKeyName);

  /** A request's checksum field: null when absent, else whether it matches `data`. */
  const checksumOk = (field: Int64 | null, data: Buffer): boolean | null =>
    field === null ? null : Number(field.value) === crc32cBitwise(data);

  type Handler = (request: any) => object;
  const unary =
    (method: string, handle: Handler): grpc.handleUnaryCall<any, any> =>
    (call, callback) => {
      calls.push(method);
      if (unavailable) {
        callback(failure(grpc.status.UNAVAILABLE, 'the fake KMS is unavailable'));
        return;
      }
      const planned = failures.findIndex((f) => f.method === method);
      if (planned >= 0) {
        const { code } = failures.splice(planned, 1)[0]!;
        callback(failure(code, `the fake KMS was told to fail ${method}`));
        return;
      }
      try {
        callback(null, handle(call.request));
      } catch (error) {
        callback(error as Partial<grpc.StatusObject>);
      }
    };

  const checkName = (name: string) => {
    if (name !== keyName) throw failure(grpc.status.NOT_FOUND, `${name} not found`);
  };

  const encrypt: Handler = (req) => {
    checkName(req.name);
    const plaintext: Buffer = req.plaintext;
    const aad: Buffer = req.additionalAuthenticatedData;
    const plainOk = checksumOk(req.plaintextCrc32c, plaintext);
    const aadOk = checksumOk(req.additionalAuthenticatedDataCrc32c, aad);
    if (plainOk === false) {
      throw failure(grpc.status.INVALID_ARGUMENT, 'plaintext_crc32c did not match plaintext');
    }
    if (aadOk === false) {
      throw failure(
        grpc.status.INVALID_ARGUMENT,
        'additional_authenticated_data_crc32c did not match additional_authenticated_data',
      );
    }
    const header = Buffer.alloc(4);
    header.writeUInt32BE(primary);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', versions.get(primary)!, iv);
    cipher.setAAD(Buffer.concat([header, aad]));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    let ciphertext: Buffer = Buffer.concat([header, iv, body, cipher.getAuthTag()]);
    let sum = crc32cBitwise(ciphertext);
    let verifiedPlain = plainOk === true;
    let verifiedAad = aadOk === true;
    const how = spoil.shift();
    if (how === 'checksum') sum = (sum ^ 1) >>> 0;
    if (how === 'data') ciphertext = flipLastBit(ciphertext);
    if (how === 'unverified') verifiedPlain = verifiedAad = false;
    return {
      name: versionName(primary),
      ciphertext,
      ciphertextCrc32c: { value: String(sum) },
      verifiedPlaintextCrc32c: verifiedPlain,
      verifiedAdditionalAuthenticatedDataCrc32c: verifiedAad,
      protectionLevel: 'SOFTWARE',
    };
  };

  const decrypt: Handler = (req) => {
    checkName(req.name);
    const ciphertext: Buffer = req.ciphertext;
    const aad: Buffer = req.additionalAuthenticatedData;
    if (checksumOk(req.ciphertextCrc32c, ciphertext) === false) {
      throw failure(grpc.status.INVALID_ARGUMENT, 'ciphertext_crc32c did not match ciphertext');
    }
    if (checksumOk(req.additionalAuthenticatedDataCrc32c, aad) === false) {
      throw failure(
        grpc.status.INVALID_ARGUMENT,
        'additional_authenticated_data_crc32c did not match additional_authenticated_data',
      );
    }
    const refused = failure(
      grpc.status.INVALID_ARGUMENT,
      "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
    );
    if (ciphertext.length < 4 + 12 + 16) throw refused;
    const key = versions.get(ciphertext.readUInt32BE(0));
    if (key === undefined) throw refused;
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, ciphertext.subarray(4, 16));
      decipher.setAAD(Buffer.concat([ciphertext.subarray(0, 4), aad]));
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
      plaintext = Buffer.concat([
        decipher.update(ciphertext.subarray(16, ciphertext.length - 16)),
        decipher.final(),
      ]);
    } catch {
      throw refused;
    }
    let sum = crc32cBitwise(plaintext);
    const how = spoil.shift();
    if (how === 'checksum' || how === 'unverified') sum = (sum ^ 1) >>> 0;
    if (how === 'data') plaintext = flipLastBit(plaintext);
    return {
      plaintext,
      plaintextCrc32c: { value: String(sum) },
      usedPrimary: ciphertext.readUInt32BE(0) === primary,
      protectionLevel: 'SOFTWARE',
    };
  };

  const getCryptoKey: Handler = (req) => {
    if (req.name === signingKeyName) return signing.cryptoKey();
    checkName(req.name);
    return {
      name: keyName,
      purpose: 'ENCRYPT_DECRYPT',
      primary: {
        name: versionName(primary),
        state: 'ENABLED',
        protectionLevel: 'SOFTWARE',
        algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
      },
    };
  };

  const server = new grpc.Server();
  server.addService(loadKmsService(), {
    Encrypt: unary('Encrypt', encrypt),
    Decrypt: unary('Decrypt', decrypt),
    GetCryptoKey: unary('GetCryptoKey', getCryptoKey),
    AsymmetricSign: unary('AsymmetricSign', signing.asymmetricSign),
    GetPublicKey: unary('GetPublicKey', (req) => {
      if (req.name.startsWith(`${keyName}/cryptoKeyVersions/`)) throw notAsymmetric();
      return signing.getPublicKey(req);
    }),
    ListCryptoKeyVersions: unary('ListCryptoKeyVersions', (req) => {
      if (req.parent === keyName) {
        const all = [...versions.keys()].map((n) => ({
          name: versionName(n),
          state: 'ENABLED',
          protectionLevel: 'SOFTWARE',
          algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
        }));
        return signing.page(all, req);
      }
      return signing.listVersions(req);
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );

  return {
    port,
    keyName,
    calls,
    primary: () => versionName(primary),
    rotate() {
      primary = Math.max(...versions.keys()) + 1;
      versions.set(primary, randomBytes(32));
      return versionName(primary);
    },
    corruptNext(count = 1, how = 'checksum') {
      for (let i = 0; i < count; i++) spoil.push(how);
    },
    setUnavailable(value) {
      unavailable = value;
    },
    failNext(method, count = 1, code = grpc.status.INTERNAL) {
      for (let i = 0; i < count; i++) failures.push({ method, code });
    },
    reset() {
      unavailable = false;
      spoil.length = 0;
      failures.length = 0;
      signing.reset();
    },
    signingKeyName,
    signingVersion: (n) => signing.versionName(n),
    signingVersions: () => signing.names(),
    addSigningVersion: (options = {}) => signing.add(options.algorithm ?? 'EC_SIGN_P256_SHA256'),
    disableSigningVersion: (name) => signing.setState(name, 'DISABLED'),
    enableSigningVersion: (name) => signing.setState(name, 'ENABLED'),
    signingPublicKey: (name) => signing.publicKey(name),
    corruptNextSign(count = 1, how = 'checksum') {
      for (let i = 0; i < count; i++) signing.signSpoil.push(how);
    },
    corruptNextPublicKey(count = 1, how = 'checksum') {
      for (let i = 0; i < count; i++) signing.publicKeySpoil.push(how);
    },
    setListPageSize(size) {
      signing.pageSize = size;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

const notAsymmetric = () =>
  failure(
    grpc.status.FAILED_PRECONDITION,
    'The request cannot be fulfilled: the CryptoKey purpose is not ASYMMETRIC_SIGN or ASYMMETRIC_DECRYPT.',
  );

const LIST_PAGE_SIZE_DEFAULT = 100;

interface SigningVersion {
  privateKey: KeyObject;
  publicKey: KeyObject;
  pem: string;
  algorithm: FakeSigningAlgorithm;
  state: 'ENABLED' | 'DISABLED';
}

/** The asymmetric signing CryptoKey: its versions, its three methods, its spoilings. */
function signingKey(keyName: string) {
  const versions = new Map<number, SigningVersion>();
  /** A key of no version: what an `other-key` spoiling signs with, a `data` one publishes. */
  const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const versionName = (n: number) => `${keyName}/cryptoKeyVersions/${n}`;
  const add = (algorithm: FakeSigningAlgorithm): string => {
    const n = versions.size + 1;
    const namedCurve = algorithm === 'EC_SIGN_P256_SHA256' ? 'prime256v1' : 'secp384r1';
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    versions.set(n, { privateKey, publicKey, pem, algorithm, state: 'ENABLED' });
    return versionName(n);
  };
  add('EC_SIGN_P256_SHA256');

  const prefix = `${keyName}/cryptoKeyVersions/`;
  /** The version `name` names; NOT_FOUND when none, FAILED_PRECONDITION when not enabled. */
  const enabled = (name: string): [number, SigningVersion] => {
    const n = name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN;
    const version = versions.get(n);
    if (version === undefined) throw failure(grpc.status.NOT_FOUND, `${name} not found`);
    if (version.state !== 'ENABLED') {
      throw failure(
        grpc.status.FAILED_PRECONDITION,
        `${name} is not enabled, current state is: ${version.state}.`,
      );
    }
    return [n, version];
  };
  const byName = (name: string): SigningVersion => {
    const version = versions.get(name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN);
    if (version === undefined) throw new Error(`the fake KMS has no signing version ${name}`);
    return version;
  };

  const state = {
    signSpoil: [] as SignCorruption[],
    publicKeySpoil: [] as PublicKeyCorruption[],
    pageSize: LIST_PAGE_SIZE_DEFAULT,
    versionName,
    add,
    names: () => [...versions.keys()].map(versionName),
    setState(name: string, value: 'ENABLED' | 'DISABLED') {
      byName(name).state = value;
    },
    publicKey: (name: string) => byName(name).publicKey,
    reset() {
      state.signSpoil.length = 0;
      state.publicKeySpoil.length = 0;
      state.pageSize = LIST_PAGE_SIZE_DEFAULT;
    },

    cryptoKey: () => ({
      name: keyName,
      purpose: 'ASYMMETRIC_SIGN',
      versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256', protectionLevel: 'SOFTWARE' },
    }),

    asymmetricSign: (req: any): object => {
      const [, version] = enabled(req.name);
      const digest: Buffer | undefined =
        req.digest?.digest === 'sha256' ? req.digest.sha256 : undefined;
      if (digest === undefined || digest.length !== 32) {
        throw failure(grpc.status.INVALID_ARGUMENT, 'digest: a SHA-256 digest is required');
      }
      if (version.algorithm !== 'EC_SIGN_P256_SHA256') {
        throw failure(
          grpc.status.INVALID_ARGUMENT,
          `the digest type does not match the algorithm ${version.algorithm}`,
        );
      }
      const digestOk =
        req.digestCrc32c === null ? null : Number(req.digestCrc32c.value) === crc32cBitwise(digest);
      if (digestOk === false) {
        throw failure(grpc.status.INVALID_ARGUMENT, 'digest_crc32c did not match digest');
      }
      const how = state.signSpoil.shift();
      let signature = ecdsaP256Der(
        how === 'other-key' ? stranger.privateKey : version.privateKey,
        digest,
      );
      let sum = crc32cBitwise(signature);
      if (how === 'checksum') sum = (sum ^ 1) >>> 0;
      if (how === 'data') signature = flipLastBit(signature);
      return {
        name: how === 'name' ? versionName(versions.size + 100) : req.name,
        signature,
        signatureCrc32c: { value: String(sum) },
        verifiedDigestCrc32c: how === 'unverified' ? false : digestOk === true,
        verifiedDataCrc32c: false,
        protectionLevel: 'SOFTWARE',
      };
    },

    getPublicKey: (req: any): object => {
      const [, version] = enabled(req.name);
      const how = state.publicKeySpoil.shift();
      let sum = crc32cBitwise(Buffer.from(version.pem, 'utf8'));
      if (how === 'checksum') sum = (sum ^ 1) >>> 0;
      const pem =
        how === 'data'
          ? (stranger.publicKey.export({ type: 'spki', format: 'pem' }) as string)
          : version.pem;
      return {
        name: how === 'name' ? versionName(versions.size + 100) : req.name,
        pem,
        pemCrc32c: { value: String(sum) },
        algorithm: version.algorithm,
        protectionLevel: 'SOFTWARE',
      };
    },

    listVersions: (req: any): object => {
      if (req.parent !== keyName) throw failure(grpc.status.NOT_FOUND, `${req.parent} not found`);
      const all = [...versions].map(([n, v]) => ({
        name: versionName(n),
        state: v.state,
        protectionLevel: 'SOFTWARE',
        algorithm: v.algorithm,
      }));
      return state.page(all, req);
    },

    /** One page of `all`, after the request's filter (none, or `state=ENABLED`, as KMS writes it). */
    page(all: { state: string }[], req: any): object {
      const filter = String(req.filter ?? '').trim();
      let listed = all;
      if (/^state\s*=\s*ENABLED$/.test(filter)) listed = all.filter((v) => v.state === 'ENABLED');
      else if (filter !== '')
        throw failure(grpc.status.INVALID_ARGUMENT, `unsupported filter: ${filter}`);
      const offset = req.pageToken === '' ? 0 : Number(req.pageToken);
      if (!Number.isInteger(offset) || offset < 0 || offset > listed.length) {
        throw failure(grpc.status.INVALID_ARGUMENT, 'invalid page_token');
      }
      const size = req.pageSize > 0 ? Math.min(req.pageSize, 1000) : state.pageSize;
      const end = Math.min(offset + size, listed.length);
      return {
        cryptoKeyVersions: listed.slice(offset, end),
        nextPageToken: end < listed.length ? String(end) : '',
        totalSize: listed.length,
      };
    },
  };
  return state;
}

/** The order of the P-256 group. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const bigOf = (bytes: Buffer): bigint => BigInt(`0x${bytes.toString('hex') || '0'}`);

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

/**
 * An ECDSA P-256 signature of a digest (as KMS signs: the digest is given, not the data), DER.
 * k·G comes from ECDH (the public key of the private scalar k); the rest is BigInt arithmetic.
 */
function ecdsaP256Der(privateKey: KeyObject, digest: Buffer): Buffer {
  const d = bigOf(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
  const z = bigOf(digest);
  for (;;) {
    const k = bigOf(randomBytes(40)) % P256_N;
    if (k === 0n) continue;
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(k.toString(16).padStart(64, '0'), 'hex'));
    const r = bigOf(ecdh.getPublicKey().subarray(1, 33)) % P256_N;
    if (r === 0n) continue;
    const s = (modPow(k, P256_N - 2n, P256_N) * ((z + r * d) % P256_N)) % P256_N;
    if (s === 0n) continue;
    const integer = (v: bigint) => {
      let bytes = Buffer.from(
        v.toString(16).padStart(2 * Math.ceil(v.toString(16).length / 2), '0'),
        'hex',
      );
      if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
      return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
    };
    const body = Buffer.concat([integer(r), integer(s)]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  }
}

function flipLastBit(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  copy[copy.length - 1] ^= 1;
  return copy;
}
