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
 * can rotate the primary version, answer UNAVAILABLE, or stop listening.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const FAKE_KMS_KEY =
  'projects/demo-agentpack/locations/global/keyRings/agentpack/cryptoKeys/secrets';

/** How an answer is spoiled: a wrong checksum, changed bytes under an honest checksum of the original, or "not verified". */
export type Corruption = 'checksum' | 'data' | 'unverified';

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
  /** Back to honest and available (spoilings not yet used are dropped); keys stay. */
  reset(): void;
  /** Calls received, by method name (`Encrypt`, `Decrypt`, `GetCryptoKey`), in order. */
  readonly calls: string[];
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
export async function startFakeKms(keyName = FAKE_KMS_KEY): Promise<FakeKms> {
  const versions = new Map<number, Buffer>([[1, randomBytes(32)]]);
  let primary = 1;
  let unavailable = false;
  const spoil: Corruption[] = [];
  const calls: string[] = [];
  const versionName = (n: number) => `${keyName}/cryptoKeyVersions/${n}`;

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
    if (how === 'checksum') sum ^= 1;
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
    if (how === 'checksum' || how === 'unverified') sum ^= 1;
    if (how === 'data') plaintext = flipLastBit(plaintext);
    return {
      plaintext,
      plaintextCrc32c: { value: String(sum) },
      usedPrimary: ciphertext.readUInt32BE(0) === primary,
      protectionLevel: 'SOFTWARE',
    };
  };

  const getCryptoKey: Handler = (req) => {
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
    reset() {
      unavailable = false;
      spoil.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

function flipLastBit(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  copy[copy.length - 1] ^= 1;
  return copy;
}
