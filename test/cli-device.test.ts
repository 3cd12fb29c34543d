/**
 * The `device` commands of the CLI as a device's operator runs them: the built launcher
 * (`node packages/cli/bin/agentpack-identity.js`) as a child process, against a small HTTP server
 * on loopback that checks each request the way the service does (our verify function on the
 * signature, key validation on enrollment) and answers like it. Needs `npm run build` first.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateDeviceKey } from '@agentpack-identity/protocol';
import {
  decodeRawKey,
  deviceFingerprint,
  ed25519PublicKeyObject,
  generateDeviceKeys,
  sealingPublicKeyOf,
  signingKeyProblem,
  signingPublicKeyOf,
  verifyAttestationSignature,
  verifyRequestSignature,
  x25519PublicKeyProblem,
} from '@agentpack-identity/protocol';
import { sealTo } from '@agentpack-identity/protocol';
import { killLiveProcesses, runNode } from './helpers/cli-process.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Whatever a failed or timed-out test left running ends here, by process group.
afterEach(killLiveProcesses);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with a clean environment (only PATH), asynchronously. */
const cli = (args: string[]): Promise<Run> => runNode(args);

/** Exactly one line on stderr, prefixed with the program's name. */
const ONE_LINE = /^agentpack-identity: [^\n]+\n$/;

const mode = (file: string) => statSync(file).mode & 0o777;
const raw = (text: string) => {
  const bytes = decodeRawKey(text.trim());
  if (bytes === null) throw new Error(`not a raw key: ${text}`);
  return bytes;
};

interface Recorded {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
type Answer = (req: Recorded) => { status: number; body: unknown };

const tmp = tempDir('agentpack-cli-device-');
let server: Server;
let url: string;
const requests: Recorded[] = [];
let answer: Answer = () => ({ status: 500, body: {} });

beforeAll(async () => {
  if (!existsSync(join(root, 'packages/cli/lib/main.js'))) {
    throw new Error('packages/cli/lib is not built: run npm run build before these tests');
  }
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      const { status, body } = answer(recorded);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  tmp.remove();
});
beforeEach(() => {
  requests.length = 0;
});

/** `device sign-attestation` with every option but `--rc`. */
const SIGN_ATTESTATION = [
  'device',
  'sign-attestation',
  '--keys',
  'd',
  '--job-id',
  'j',
  '--input-sha256',
  'a',
  '--output-sha256',
  'b',
];

describe('help and bad command lines', () => {
  it.each([
    [['device', '--help'], 'device keygen --out DIR'],
    [['device', 'keygen', '--help'], 'mode 0700'],
    [['device', 'enroll', '--help'], 'DIR/device-key (mode 0600'],
    [['device', 'request', '--help'], '--seal'],
    [['device', 'sign-attestation', '--help'], '--output-sha256'],
  ])('%j prints that command’s help and exits 0', async (args, text) => {
    const res = await cli(args);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^usage: agentpack-identity device /);
    expect(res.stdout).toContain(text);
  });

  it('lists the device commands in the top-level help', async () => {
    const res = await cli(['--help']);
    expect(res.stdout).toContain('agentpack-identity device keygen --out DIR');
    expect(res.stdout).toContain('agentpack-identity device enroll --url URL --code CODE');
  });

  it.each([
    [['device'], /device: missing command/],
    [['device', 'rotate'], /device: unknown command "rotate"/],
    [['device', 'toString'], /device: unknown command "toString"/],
    [['device', 'keygen'], /--out is required/],
    [['device', 'keygen', '--out', 'a', '--out', 'b'], /--out given more than once/],
    [['device', 'enroll', '--url', 'http://127.0.0.1', '--keys', 'd'], /--code is required/],
    [['device', 'request', '--url', 'http://127.0.0.1', '--keys', 'd'], /--path is required/],
    [
      ['device', 'request', '--url', 'http://127.0.0.1', '--keys', 'd', '--path', 'secrets'],
      /--path must be a route path/,
    ],
    [
      [
        'device',
        'request',
        '--url',
        'http://127.0.0.1',
        '--keys',
        'd',
        '--path',
        '/x',
        '--body',
        '[1]',
      ],
      /--body must be a JSON object/,
    ],
    [
      [
        'device',
        'request',
        '--url',
        'http://127.0.0.1',
        '--keys',
        'd',
        '--path',
        '/x',
        '--seal',
        '--seal',
      ],
      /--seal given more than once/,
    ],
    [[...SIGN_ATTESTATION, '--rc', 'x'], /--rc must be an integer/],
    [
      [...SIGN_ATTESTATION, '--rc=2147483648'],
      /--rc must be an integer from -2147483648 to 2147483647/,
    ],
    [['device', 'sign-attestation', '--keys', 'd'], /--job-id is required/],
  ])('%j exits 2 with one line', async (args, message) => {
    const res = await cli(args);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
  });
});

describe('device keygen', () => {
  const dir = join(tmp.dir, 'new', 'device');
  let printed: { sealing_public_key: string; signing_public_key: string; fingerprint: string };
  let run: Run;

  beforeAll(async () => {
    run = await cli(['device', 'keygen', '--out', dir]);
    printed = JSON.parse(run.stdout);
  });

  it('creates the directory 0700 and the key files 0600', () => {
    expect(run.code).toBe(0);
    expect(mode(dir)).toBe(0o700);
    for (const name of ['sealing.key', 'signing.key', 'device.json']) {
      expect(mode(join(dir, name)), name).toBe(0o600);
    }
  });

  it('prints the public keys and a fingerprint that matches them, never a private key', () => {
    const sealingPrivate = readFileSync(join(dir, 'sealing.key'), 'utf8').trim();
    const signingSeed = readFileSync(join(dir, 'signing.key'), 'utf8').trim();
    expect(sealingPrivate).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signingSeed).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const secret of [sealingPrivate, signingSeed]) {
      expect(run.stdout + run.stderr).not.toContain(secret);
    }
    expect(Object.keys(printed).sort()).toEqual([
      'fingerprint',
      'sealing_public_key',
      'signing_public_key',
    ]);
    const sealingPublic = raw(printed.sealing_public_key);
    const signingPublic = raw(printed.signing_public_key);
    expect(sealingPublicKeyOf(raw(sealingPrivate))).toEqual(sealingPublic);
    expect(signingPublicKeyOf(raw(signingSeed))).toEqual(signingPublic);
    expect(printed.fingerprint).toBe(deviceFingerprint(sealingPublic, signingPublic));
    expect(x25519PublicKeyProblem(sealingPublic)).toBeNull();
    expect(signingKeyProblem(signingPublic)).toBeNull();
    expect(JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8'))).toEqual(printed);
    expect(run.stderr).toContain('mode 0600');
  });

  it('never overwrites a device’s keys', async () => {
    const before = readFileSync(join(dir, 'signing.key'), 'utf8');
    const again = await cli(['device', 'keygen', '--out', dir]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(ONE_LINE);
    expect(again.stderr).toContain('already exists');
    expect(readFileSync(join(dir, 'signing.key'), 'utf8')).toBe(before);
  });

  it('uses an existing directory as it is', async () => {
    const existing = join(tmp.dir, 'existing');
    mkdirSync(existing, { mode: 0o750 });
    chmodSync(existing, 0o750);
    const res = await cli(['device', 'keygen', '--out', existing]);
    expect(res.code).toBe(0);
    expect(mode(existing)).toBe(0o750);
    expect(mode(join(existing, 'signing.key'))).toBe(0o600);
  });
});

/** A fresh device directory made by the CLI, with its printed public keys. */
async function keygen(name: string) {
  const dir = join(tmp.dir, name);
  const res = await cli(['device', 'keygen', '--out', dir]);
  expect(res.code).toBe(0);
  const printed = JSON.parse(res.stdout) as {
    sealing_public_key: string;
    signing_public_key: string;
    fingerprint: string;
  };
  return { dir, ...printed };
}

/**
 * The service's side of /device/enroll: checks the request, pins the keys, answers 201 with the
 * device key sealed to the request's sealing key. `override` changes the answer the way a
 * broken or malicious service would: another fingerprint, sealed to another key, a clear
 * `device_key` instead of the sealed one.
 */
function enrollAnswer(
  deviceKey: string,
  override: {
    fingerprint?: string;
    sealTo?: Uint8Array;
    clear?: boolean;
  } = {},
): Answer {
  return (req) => {
    if (req.method !== 'POST' || req.url !== '/device/enroll') return { status: 404, body: {} };
    if (req.headers['content-type'] !== 'application/json') return { status: 415, body: {} };
    const body = JSON.parse(req.body.toString()) as Record<string, string>;
    const sealing = decodeRawKey(body['sealing_public_key'] ?? '');
    const signing = decodeRawKey(body['signing_public_key'] ?? '');
    if (
      body['code'] !== 'apen_good-code' ||
      sealing === null ||
      signing === null ||
      x25519PublicKeyProblem(sealing) !== null ||
      signingKeyProblem(signing) !== null
    ) {
      return { status: 400, body: { error: { code: 'invalid_argument', message: 'bad' } } };
    }
    const sealed = Buffer.from(
      sealTo(override.sealTo ?? sealing, Buffer.from(deviceKey, 'utf8')),
    ).toString('base64url');
    return {
      status: 201,
      body: {
        key_id: 'dk_enrolled',
        agent_id: 'agent-one',
        ...(override.clear === true ? { device_key: deviceKey } : { sealed_device_key: sealed }),
        fingerprint: override.fingerprint ?? deviceFingerprint(sealing, signing),
        created_at: '2030-01-01T00:00:00.000Z',
        expires_at: null,
      },
    };
  };
}

const enrollArgs = (dir: string, code = 'apen_good-code') => [
  'device',
  'enroll',
  '--url',
  url,
  '--code',
  code,
  '--keys',
  dir,
  '--label',
  'build box',
];

describe('device enroll', () => {
  it('sends the code and both public keys, stores the device key 0600, prints no secret', async () => {
    const device = await keygen('enroll-ok');
    const deviceKey = generateDeviceKey();
    answer = enrollAnswer(deviceKey);
    const res = await cli(enrollArgs(device.dir));
    expect(res.stderr).not.toMatch(/failed/);
    expect(res.code).toBe(0);
    expect(requests).toHaveLength(1);
    expect(JSON.parse(requests[0]!.body.toString())).toEqual({
      code: 'apen_good-code',
      sealing_public_key: device.sealing_public_key,
      signing_public_key: device.signing_public_key,
      label: 'build box',
    });
    expect(JSON.parse(res.stdout)).toEqual({
      key_id: 'dk_enrolled',
      agent_id: 'agent-one',
      fingerprint: device.fingerprint,
    });
    expect(res.stdout + res.stderr).not.toContain(deviceKey);
    const keyFile = join(device.dir, 'device-key');
    expect(mode(keyFile)).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(deviceKey);
    const enrollmentFile = join(device.dir, 'enrollment.json');
    expect(mode(enrollmentFile)).toBe(0o600);
    expect(JSON.parse(readFileSync(enrollmentFile, 'utf8'))).toEqual({
      key_id: 'dk_enrolled',
      agent_id: 'agent-one',
      fingerprint: device.fingerprint,
      created_at: '2030-01-01T00:00:00.000Z',
      expires_at: null,
    });

    // Enrolled once: a second enrollment is refused before the code is spent.
    requests.length = 0;
    const again = await cli(enrollArgs(device.dir));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(ONE_LINE);
    expect(again.stderr).toContain('already enrolled');
    expect(requests).toHaveLength(0);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(deviceKey);
  });

  it('saves nothing when the service pinned another fingerprint', async () => {
    const device = await keygen('enroll-mismatch');
    const other = generateDeviceKeys();
    const deviceKey = generateDeviceKey();
    answer = enrollAnswer(deviceKey, {
      fingerprint: deviceFingerprint(other.sealing.publicKey, other.signing.publicKey),
    });
    const res = await cli(enrollArgs(device.dir));
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('another fingerprint');
    expect(res.stderr).toContain('revoke device key dk_enrolled');
    expect(res.stderr).not.toContain(deviceKey);
    expect(existsSync(join(device.dir, 'device-key'))).toBe(false);
    expect(existsSync(join(device.dir, 'enrollment.json'))).toBe(false);
  });

  it('saves nothing unless the answer is a device key sealed to this device', async () => {
    const device = await keygen('enroll-unsealed');
    const deviceKey = generateDeviceKey();
    const other = generateDeviceKeys();
    const cases: Array<[Answer, string]> = [
      // A clear device_key (what a relaying party could read) is not accepted in its place.
      [enrollAnswer(deviceKey, { clear: true }), 'the answer has no sealed_device_key'],
      // Sealed to someone else's key: this device cannot open it.
      [
        enrollAnswer(deviceKey, { sealTo: other.sealing.publicKey }),
        'cannot open the sealed device key',
      ],
      // Opens, but is not a device key.
      [enrollAnswer('not-a-device-key'), 'not a well-formed device key'],
    ];
    for (const [bad, reason] of cases) {
      answer = bad;
      const res = await cli(enrollArgs(device.dir));
      expect(res.code, reason).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(ONE_LINE);
      expect(res.stderr).toContain(reason);
      expect(res.stderr).not.toContain(deviceKey);
      expect(existsSync(join(device.dir, 'device-key'))).toBe(false);
      expect(existsSync(join(device.dir, 'enrollment.json'))).toBe(false);
    }
  });

  it('fails with the service’s reason on a refused code, and saves nothing', async () => {
    const device = await keygen('enroll-refused');
    answer = () => ({
      status: 401,
      body: { error: { code: 'unauthenticated', message: 'unknown, used or expired code' } },
    });
    const res = await cli(enrollArgs(device.dir, 'apen_used'));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('enrollment failed: HTTP 401 unauthenticated');
    expect(res.stderr).not.toContain('apen_used');
    expect(existsSync(join(device.dir, 'device-key'))).toBe(false);
  });

  it('refuses plain http to a non-loopback host, and keys others can read, before sending', async () => {
    const device = await keygen('enroll-refusals');
    const remote = await cli([
      'device',
      'enroll',
      '--url',
      'http://identity.example.com',
      '--code',
      'apen_good-code',
      '--keys',
      device.dir,
    ]);
    expect(remote.code).toBe(1);
    expect(remote.stderr).toMatch(/--url: plain http is allowed to loopback addresses only/);
    chmodSync(join(device.dir, 'signing.key'), 0o644);
    const loose = await cli(enrollArgs(device.dir));
    expect(loose.code).toBe(1);
    expect(loose.stderr).toMatch(ONE_LINE);
    expect(loose.stderr).toContain('readable by others');
    expect(requests).toHaveLength(0);
  });
});

describe('device sign-attestation', () => {
  it('prints a signature that verifies with the device’s public key, and only for those fields', async () => {
    const device = await keygen('attest');
    const fields = {
      job_id: 'job-7',
      input_sha256: 'a'.repeat(64),
      output_sha256: 'b'.repeat(64),
      rc: -3,
    };
    const res = await cli([
      'device',
      'sign-attestation',
      '--keys',
      device.dir,
      '--job-id',
      fields.job_id,
      '--input-sha256',
      fields.input_sha256,
      '--output-sha256',
      fields.output_sha256,
      `--rc=${fields.rc}`,
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const signature = res.stdout.trim();
    expect(signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    const key = ed25519PublicKeyObject(raw(device.signing_public_key));
    expect(verifyAttestationSignature(key, fields, signature)).toBe(true);
    expect(verifyAttestationSignature(key, { ...fields, rc: 3 }, signature)).toBe(false);
    expect(verifyAttestationSignature(key, { ...fields, job_id: 'job-8' }, signature)).toBe(false);
  });
});

describe('device request', () => {
  let device: Awaited<ReturnType<typeof keygen>>;
  let deviceKey: string;
  /** What the test server concluded about each signed request. */
  const verdicts: boolean[] = [];

  beforeAll(async () => {
    device = await keygen('request');
    deviceKey = generateDeviceKey();
    answer = enrollAnswer(deviceKey);
    const res = await cli(enrollArgs(device.dir));
    expect(res.code).toBe(0);
  });
  beforeEach(() => {
    verdicts.length = 0;
  });

  /** The service's check of a signed request, with our verify function. */
  function verified(req: Recorded, path = req.url ?? ''): boolean {
    const timestamp = String(req.headers['x-agentpack-timestamp'] ?? '');
    const fresh = Math.abs(Number(timestamp) * 1000 - Date.now()) <= 60_000;
    return (
      fresh &&
      req.headers['x-agentpack-device-key'] === deviceKey &&
      verifyRequestSignature(
        ed25519PublicKeyObject(raw(device.signing_public_key)),
        {
          method: req.method ?? '',
          path,
          timestamp,
          nonce: String(req.headers['x-agentpack-nonce'] ?? ''),
          body: req.body,
          // A delegated request signs v2, which ends with the delegation id it carries.
          ...(typeof req.headers['x-agentpack-delegation'] === 'string'
            ? { delegation: req.headers['x-agentpack-delegation'] }
            : {}),
        },
        String(req.headers['x-agentpack-signature'] ?? ''),
      )
    );
  }

  /** Answers like /secrets/get and /secrets/resolve, sealed when asked. */
  function secretsAnswer(sealingKey: () => Uint8Array): Answer {
    return (req) => {
      const ok = verified(req);
      verdicts.push(ok, verified(req, '/secrets/put'));
      if (!ok) return { status: 401, body: { error: { code: 'unauthenticated', message: 'no' } } };
      const body = JSON.parse(req.body.toString()) as { seal?: boolean; refs?: string[] };
      const deliver = (value: string) =>
        body.seal === true
          ? { sealed: Buffer.from(sealTo(sealingKey(), Buffer.from(value))).toString('base64url') }
          : { value };
      if (req.url === '/secrets/get') {
        return {
          status: 200,
          body: { name: 'openai_key', version: 3, ...deliver('sk-ünï ✓'), created_at: 'T' },
        };
      }
      return {
        status: 200,
        body: {
          values: (body.refs ?? []).map((ref, i) => ({ ref, version: i + 1, ...deliver(`v${i}`) })),
        },
      };
    };
  }

  const requestArgs = (path: string, body: string, ...more: string[]) => [
    'device',
    'request',
    '--url',
    url,
    '--keys',
    device.dir,
    '--path',
    path,
    '--body',
    body,
    ...more,
  ];

  it('signs the request so that the service’s check accepts it, and prints the answer', async () => {
    answer = secretsAnswer(() => raw(device.sealing_public_key));
    const res = await cli(requestArgs('/secrets/get', '{"name":"openai_key"}'));
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    // Accepted as signed; the same signature does not pass for another path.
    expect(verdicts).toEqual([true, false]);
    const [req] = requests as [Recorded];
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-agentpack-nonce']).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(JSON.parse(req.body.toString())).toEqual({ name: 'openai_key' });
    expect(JSON.parse(res.stdout)).toEqual({
      name: 'openai_key',
      version: 3,
      value: 'sk-ünï ✓',
      created_at: 'T',
    });
  });

  it('with --seal asks for sealing and opens the sealed value with sealing.key', async () => {
    answer = secretsAnswer(() => raw(device.sealing_public_key));
    const res = await cli(requestArgs('/secrets/get', '{"name":"openai_key"}', '--seal'));
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(verdicts).toEqual([true, false]);
    expect(JSON.parse(requests[0]!.body.toString())).toEqual({ name: 'openai_key', seal: true });
    expect(JSON.parse(res.stdout)).toEqual({
      name: 'openai_key',
      version: 3,
      value: 'sk-ünï ✓',
      created_at: 'T',
    });
  });

  it('opens each sealed value of /secrets/resolve, in order, and sends the delegation', async () => {
    answer = secretsAnswer(() => raw(device.sealing_public_key));
    const refs = ['agentpack.secret://agent-one/a', 'agentpack.secret://agent-one/b'];
    const res = await cli(
      requestArgs('/secrets/resolve', JSON.stringify({ refs }), '--seal', '--delegation', 'dg_1'),
    );
    expect(res.code).toBe(0);
    expect(verdicts).toEqual([true, false]);
    expect(requests[0]!.headers['x-agentpack-delegation']).toBe('dg_1');
    expect(JSON.parse(res.stdout)).toEqual({
      values: [
        { ref: refs[0], version: 1, value: 'v0' },
        { ref: refs[1], version: 2, value: 'v1' },
      ],
    });
  });

  it('fails with one line when the value was sealed to another key', async () => {
    const other = generateDeviceKeys();
    answer = secretsAnswer(() => other.sealing.publicKey);
    const res = await cli(requestArgs('/secrets/get', '{"name":"openai_key"}', '--seal'));
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('cannot open the sealed value');
  });

  it('fails with the service’s reason on an error answer', async () => {
    answer = () => ({
      status: 403,
      body: { error: { code: 'permission_denied', message: 'sealed delivery is required' } },
    });
    const res = await cli(requestArgs('/secrets/get', '{"name":"x"}'));
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toContain('request failed: HTTP 403 permission_denied');
    expect(res.stderr).not.toContain(deviceKey);
  });

  it('needs an enrolled device and private files only the owner can read', async () => {
    const fresh = await keygen('request-unenrolled');
    const unenrolled = await cli([
      'device',
      'request',
      '--url',
      url,
      '--keys',
      fresh.dir,
      '--path',
      '/secrets/list',
    ]);
    expect(unenrolled.code).toBe(1);
    expect(unenrolled.stderr).toMatch(ONE_LINE);
    expect(unenrolled.stderr).toContain('enroll the device first');
    const copy = join(tmp.dir, 'request-copy');
    mkdirSync(copy, { mode: 0o700 });
    for (const name of ['sealing.key', 'signing.key', 'device-key']) {
      copyFileSync(join(device.dir, name), join(copy, name));
    }
    chmodSync(join(copy, 'device-key'), 0o640);
    const loose = await cli(['device', 'request', '--url', url, '--keys', copy, '--path', '/x']);
    expect(loose.code).toBe(1);
    expect(loose.stderr).toMatch(ONE_LINE);
    expect(loose.stderr).toContain('readable by others');
    expect(requests).toHaveLength(0);
  });
});
