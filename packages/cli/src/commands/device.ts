/**
 * The `device` group, on an installed agent's machine: make and use an enrolled device. Its two
 * private keys (X25519 to open sealed secrets, Ed25519 to sign requests and attestations) and
 * the device key it receives at enrollment live in one 0700 directory, each file 0600, and are
 * never printed. Only `device request` prints a secret, when that is what it was asked for.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEVICE_FILES,
  deviceFingerprint,
  ed25519PrivateKeyObject,
  encodeRawKey,
  generateDeviceKeys,
  isWellFormedDeviceKey,
  openSealed,
  sealingPublicKeyOf,
  signAttestation,
  signingPublicKeyOf,
  signRequest,
  type AttestationFields,
  CREDENTIAL_HEADERS,
  CREDENTIAL_VALUE_PATTERN,
} from '@agentpack-identity/protocol';
import { CliError, NAME, nowMs, usage, type CliIo, type CommandGroup } from '../io.js';
import { parseOptions, required } from '../options.js';
import {
  makePrivateDir,
  readPrivateFile,
  readRawKeyFile,
  refuseExisting,
  writePrivateFile,
} from '../private-files.js';
import { answerObject, post, REQUEST_TIMEOUT_MS, serviceUrl } from '../service.js';

const HELP = {
  device: `usage: ${NAME} device keygen --out DIR
       ${NAME} device enroll --url URL --code CODE --keys DIR [--label LABEL]
       ${NAME} device request --url URL --keys DIR --path PATH [--body JSON]
           [--delegation ID] [--seal]
       ${NAME} device sign-attestation --keys DIR --job-id ID --input-sha256 H
           --output-sha256 H --rc N

Run "${NAME} device COMMAND --help" for a command's options.
`,
  keygen: `usage: ${NAME} device keygen --out DIR

Makes an enrolled device's keys: an X25519 key that secrets are sealed to and an Ed25519 key
that signs its requests and attestations. Creates DIR (mode 0700) if it does not exist and
writes, each mode 0600 and never over an existing file:
  DIR/sealing.key   the X25519 private key (raw 32 bytes, base64url)
  DIR/signing.key   the Ed25519 private key (its 32-byte seed, base64url)
  DIR/device.json   {sealing_public_key, signing_public_key, fingerprint}
Prints the public keys and the fingerprint (never a private key). Read the fingerprint to the
operator out of band: it goes into /device/enrollments/create as expected_fingerprint.

options:
  --out DIR    the device directory (required)
  -h, --help   this help
`,
  enroll: `usage: ${NAME} device enroll --url URL --code CODE --keys DIR [--label LABEL]

Enrolls the device whose keys are in DIR with a one-time enrollment code: POST URL/device/enroll
with {code, sealing_public_key, signing_public_key, label?}. The service pins both public keys
and answers with a device key sealed to this device (sealed_device_key), which is opened with
DIR/sealing.key and written to DIR/device-key (mode 0600; never printed), with
DIR/enrollment.json {key_id, agent_id, fingerprint, created_at, expires_at}. Prints key_id,
agent_id and fingerprint. If the service answers with another fingerprint than this device's,
or with a key this device cannot open, nothing is written and the command fails: someone
changed the keys on the way.
A device that already has DIR/device-key is not enrolled again (move the file away first).

options:
  --url URL       the service's base URL; plain http only to loopback addresses
  --code CODE     the one-time code from /device/enrollments/create
  --keys DIR      the directory written by "device keygen"
  --label LABEL   a label for the device key
  -h, --help      this help
`,
  request: `usage: ${NAME} device request --url URL --keys DIR --path PATH [--body JSON]
    [--delegation ID] [--seal]

Sends POST URL/PATH with the device key from DIR/device-key, signed with DIR/signing.key
(x-agentpack-timestamp, x-agentpack-nonce, x-agentpack-signature over the route path PATH),
and prints the answer's JSON. With --seal, adds "seal": true to the body and opens each sealed
value of the answer (/secrets/get, /secrets/resolve) with DIR/sealing.key, so the output shows
"value" where the service sent "sealed". This prints secrets: that is its job.

options:
  --url URL          the service's base URL; plain http only to loopback addresses
  --keys DIR         the directory written by "device keygen" and "device enroll"
  --path PATH        the route, e.g. /secrets/get
  --body JSON        the request body, a JSON object (default {})
  --delegation ID    act for another agent under this delegation (x-agentpack-delegation)
  --seal             ask for sealed values and open them
  -h, --help         this help
`,
  signAttestation: `usage: ${NAME} device sign-attestation --keys DIR --job-id ID --input-sha256 H
    --output-sha256 H --rc N

Signs the attestation "agentpack-attestation-v1\n<job_id>\n<input_sha256>\n<output_sha256>\n<rc>"
with DIR/signing.key and prints the signature (base64url), as /attestations/verify takes it.

options:
  --keys DIR            the directory written by "device keygen"
  --job-id ID           the job's id
  --input-sha256 H      the digest of the job's input
  --output-sha256 H     the digest of the job's output
  --rc N                the job's exit code (an integer; a negative one as --rc=-1)
  -h, --help            this help
`,
} as const;

/** The device's private keys and what follows from them. */
interface DeviceKeyFiles {
  sealingPrivate: Uint8Array;
  sealingPublic: Uint8Array;
  signingSeed: Uint8Array;
  signingPublic: Uint8Array;
  fingerprint: string;
}

function readDeviceKeyFiles(dir: string): DeviceKeyFiles {
  const sealingPrivate = readRawKeyFile(dir, DEVICE_FILES.sealingKey);
  const signingSeed = readRawKeyFile(dir, DEVICE_FILES.signingKey);
  const sealingPublic = sealingPublicKeyOf(sealingPrivate);
  const signingPublic = signingPublicKeyOf(signingSeed);
  return {
    sealingPrivate,
    sealingPublic,
    signingSeed,
    signingPublic,
    fingerprint: deviceFingerprint(sealingPublic, signingPublic),
  };
}

function deviceKeygen(args: readonly string[], io: CliIo): number {
  const opts = parseOptions(args, { values: ['out'] });
  const dir = required(opts.out, 'out');
  makePrivateDir(dir);
  const files = [DEVICE_FILES.sealingKey, DEVICE_FILES.signingKey, DEVICE_FILES.publicKeys].map(
    (name) => join(dir, name),
  );
  refuseExisting(files, 'refusing to overwrite a device’s keys');
  const keys = generateDeviceKeys();
  const summary = {
    sealing_public_key: encodeRawKey(keys.sealing.publicKey),
    signing_public_key: encodeRawKey(keys.signing.publicKey),
    fingerprint: deviceFingerprint(keys.sealing.publicKey, keys.signing.publicKey),
  };
  try {
    writePrivateFile(files[0]!, `${encodeRawKey(keys.sealing.privateKey)}\n`);
    writePrivateFile(files[1]!, `${encodeRawKey(keys.signing.privateKey)}\n`);
  } finally {
    keys.sealing.privateKey.fill(0);
    keys.signing.privateKey.fill(0);
  }
  writePrivateFile(files[2]!, `${JSON.stringify(summary, null, 2)}\n`);
  io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  io.stderr(
    `private keys written to ${files[0]} and ${files[1]} (mode 0600); read the fingerprint out of band to the operator who creates the enrollment\n`,
  );
  return 0;
}

async function deviceEnroll(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, { values: ['url', 'code', 'keys', 'label'] });
  const base = serviceUrl(required(opts.url, 'url'), '--url');
  const code = required(opts.code, 'code');
  const dir = required(opts.keys, 'keys');
  if (!CREDENTIAL_VALUE_PATTERN.test(code)) throw usage('--code is not an enrollment code');
  const deviceKeyFile = join(dir, DEVICE_FILES.deviceKey);
  const enrollmentFile = join(dir, DEVICE_FILES.enrollment);
  // Checked before the code is spent: a used code cannot be used again.
  refuseExisting(
    [deviceKeyFile, enrollmentFile],
    'this device is already enrolled (move the file away to enroll it again)',
  );
  const keys = readDeviceKeyFiles(dir);
  // The sealing key stays only until the answer is opened; the signing seed is not needed.
  keys.signingSeed.fill(0);
  try {
    const request: Record<string, string> = {
      code,
      sealing_public_key: encodeRawKey(keys.sealingPublic),
      signing_public_key: encodeRawKey(keys.signingPublic),
    };
    if (opts.label !== undefined) request['label'] = opts.label;
    const res = await post(
      `${base}/device/enroll`,
      {},
      JSON.stringify(request),
      'enrollment failed',
      REQUEST_TIMEOUT_MS,
    );
    const answer = answerObject(res.status, res.text, 'enrollment failed', (s) => s === 201);
    const { key_id, agent_id, sealed_device_key, fingerprint, created_at, expires_at } = answer;
    if (
      typeof key_id !== 'string' ||
      !CREDENTIAL_VALUE_PATTERN.test(key_id) ||
      typeof agent_id !== 'string'
    ) {
      throw new CliError('enrollment failed: the answer has no key_id or agent_id');
    }
    if (typeof sealed_device_key !== 'string') {
      throw new CliError(`enrollment failed: the answer has no sealed_device_key (key ${key_id})`);
    }
    // Policy: the service must have pinned exactly this device's keys. A different fingerprint
    // means the keys were changed on the way: that enrollment must not be used.
    if (fingerprint !== keys.fingerprint) {
      throw new CliError(
        `the service pinned another fingerprint than this device's (${keys.fingerprint}): nothing was saved; revoke device key ${key_id}`,
      );
    }
    const deviceKey = openSealedText(sealed_device_key, keys, SEALED_DEVICE_KEY);
    if (!isWellFormedDeviceKey(deviceKey)) {
      throw new CliError(
        `enrollment failed: the sealed device key is not a well-formed device key (key ${key_id})`,
      );
    }
    writePrivateFile(deviceKeyFile, `${deviceKey}\n`);
    const enrollment = { key_id, agent_id, fingerprint, created_at, expires_at };
    writePrivateFile(enrollmentFile, `${JSON.stringify(enrollment, null, 2)}\n`);
    io.stdout(`${JSON.stringify({ key_id, agent_id, fingerprint }, null, 2)}\n`);
    io.stderr(`device key written to ${deviceKeyFile} (mode 0600)\n`);
    return 0;
  } finally {
    keys.sealingPrivate.fill(0);
  }
}

const RC_PATTERN = /^-?(0|[1-9][0-9]{0,9})$/;

function deviceSignAttestation(args: readonly string[], io: CliIo): number {
  const opts = parseOptions(args, {
    values: ['keys', 'job-id', 'input-sha256', 'output-sha256', 'rc'],
  });
  const dir = required(opts.keys, 'keys');
  const fields: AttestationFields = {
    job_id: required(opts['job-id'], 'job-id'),
    input_sha256: required(opts['input-sha256'], 'input-sha256'),
    output_sha256: required(opts['output-sha256'], 'output-sha256'),
    rc: 0,
  };
  const rcText = required(opts.rc, 'rc');
  // The service takes a 32-bit exit code: anything else could be signed but never verified.
  if (
    !RC_PATTERN.test(rcText) ||
    Math.abs(Number(rcText)) > 2 ** 31 ||
    Number(rcText) === 2 ** 31
  ) {
    throw usage('--rc must be an integer from -2147483648 to 2147483647');
  }
  fields.rc = Number(rcText);
  for (const [option, value] of [
    ['--job-id', fields.job_id],
    ['--input-sha256', fields.input_sha256],
    ['--output-sha256', fields.output_sha256],
  ] as const) {
    if (/[\x00-\x1f\x7f]/.test(value)) throw usage(`${option} must not contain control characters`);
  }
  const seed = readRawKeyFile(dir, DEVICE_FILES.signingKey);
  try {
    io.stdout(`${signAttestation(fields, seed)}\n`);
  } finally {
    seed.fill(0);
  }
  return 0;
}

/** A route path as the API names it: `/secrets/get`. */
const ROUTE_PATH = /^(\/[A-Za-z0-9._~-]+)+$/;

/** What a sealed member of an answer is called: its field, and in a sentence. */
interface SealedMember {
  field: string;
  what: string;
}
const SEALED_VALUE: SealedMember = { field: 'sealed', what: 'the sealed value' };
const SEALED_DEVICE_KEY: SealedMember = {
  field: 'sealed_device_key',
  what: 'the sealed device key',
};

/** Opens one sealed member of an answer (UTF-8 text) with the device's sealing key. */
function openSealedText(sealed: unknown, keys: DeviceKeyFiles, member: SealedMember): string {
  const bytes = typeof sealed === 'string' ? Buffer.from(sealed, 'base64url') : null;
  if (bytes === null || bytes.toString('base64url') !== sealed) {
    throw new CliError(`the answer’s "${member.field}" is not base64url`);
  }
  const opened = openSealed(bytes, keys.sealingPublic, keys.sealingPrivate);
  if (opened === null) {
    throw new CliError(
      `cannot open ${member.what}: it was not sealed to this device’s key, or it was altered`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(opened);
  } catch {
    throw new CliError(`${member.what} is not UTF-8 text`);
  } finally {
    opened.fill(0);
  }
}

/** `item` with its `sealed` member opened into `value`, in the same place. */
function withOpenedValue(item: Record<string, unknown>, keys: DeviceKeyFiles) {
  if (!Object.hasOwn(item, 'sealed')) return item;
  return Object.fromEntries(
    Object.entries(item).map(([key, value]) =>
      key === 'sealed' ? ['value', openSealedText(value, keys, SEALED_VALUE)] : [key, value],
    ),
  );
}

async function deviceRequest(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: ['url', 'keys', 'path', 'body', 'delegation'],
    flags: ['seal'],
  });
  const base = serviceUrl(required(opts.url, 'url'), '--url');
  const dir = required(opts.keys, 'keys');
  const path = required(opts.path, 'path');
  if (!ROUTE_PATH.test(path)) throw usage('--path must be a route path such as /secrets/get');
  let body: unknown;
  try {
    body = JSON.parse(opts.body ?? '{}');
  } catch {
    throw usage('--body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw usage('--body must be a JSON object');
  }
  if (opts.seal === true) (body as Record<string, unknown>)['seal'] = true;
  if (opts.delegation !== undefined && !CREDENTIAL_VALUE_PATTERN.test(opts.delegation)) {
    throw usage('--delegation is not a delegation id');
  }
  const deviceKeyFile = join(dir, DEVICE_FILES.deviceKey);
  if (!existsSync(deviceKeyFile)) {
    throw new CliError(`${deviceKeyFile} is missing: enroll the device first (device enroll)`);
  }
  const deviceKey = readPrivateFile(deviceKeyFile);
  if (!isWellFormedDeviceKey(deviceKey)) {
    throw new CliError(`${deviceKeyFile} does not hold a device key`);
  }
  const keys = readDeviceKeyFiles(dir);
  try {
    const text = JSON.stringify(body);
    const signingKey = ed25519PrivateKeyObject(keys.signingSeed);
    keys.signingSeed.fill(0);
    const headers: Record<string, string> = {
      [CREDENTIAL_HEADERS.device]: deviceKey,
      ...signRequest({
        method: 'POST',
        path,
        body: text,
        signingSeed: signingKey,
        nowMs: nowMs(io),
        // A delegated request signs its delegation too (and the headers carry it).
        delegation: opts.delegation,
      }),
    };
    const res = await post(`${base}${path}`, headers, text, 'request failed', REQUEST_TIMEOUT_MS);
    let answer = answerObject(res.status, res.text, 'request failed', (s) => s >= 200 && s < 300);
    answer = withOpenedValue(answer, keys);
    const values = answer['values'];
    if (Array.isArray(values)) {
      answer = {
        ...answer,
        values: values.map((item: unknown) =>
          typeof item === 'object' && item !== null && !Array.isArray(item)
            ? withOpenedValue(item as Record<string, unknown>, keys)
            : item,
        ),
      };
    }
    io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    return 0;
  } finally {
    keys.sealingPrivate.fill(0);
    keys.signingSeed.fill(0);
  }
}

export const DEVICE: CommandGroup = {
  help: HELP.device,
  hint: 'device --help',
  commands: {
    keygen: { help: HELP.keygen, run: deviceKeygen },
    enroll: { help: HELP.enroll, run: deviceEnroll },
    request: { help: HELP.request, run: deviceRequest },
    'sign-attestation': { help: HELP.signAttestation, run: deviceSignAttestation },
  },
};
