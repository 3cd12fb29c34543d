/**
 * The capture: a scripted session over every route and every kind of failure, on several
 * services. Every log line and every response body is kept; then no secret may be where it does
 * not belong. This module holds what is captured and the calls the session makes through; the
 * session's chapters are in `fuzz-capture-*.ts`.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { localKeyring } from '../../functions/src/adapters/local-keyring.js';
import { signRequest } from '@agentpack-identity/protocol';
import type { Keyring } from '../../functions/src/ports/keyring.js';
import type { Store } from '../../functions/src/ports/store.js';
import { manualClock, type ManualClock } from './clock.js';
import { sendRaw } from './raw-client.js';
import { startTestService, type TestService } from './service.js';

/** A keyring over a known KEK that remembers every data key it wraps or unwraps. */
export function recordingKeyring(
  kek: Buffer,
  dataKeys: Buffer[],
  options: { failUnwrapFor?: string } = {},
): Keyring {
  const base = localKeyring(kek);
  return {
    primaryRef: () => base.primaryRef(),
    async wrap(dataKey, aad) {
      dataKeys.push(Buffer.from(dataKey));
      return base.wrap(dataKey, aad);
    },
    async unwrap(wrapped, kekRef, aad) {
      if (
        options.failUnwrapFor !== undefined &&
        aad.toString('utf8').includes(options.failUnwrapFor)
      ) {
        throw new Error('key service unavailable (injected)');
      }
      const key = await base.unwrap(wrapped, kekRef, aad);
      dataKeys.push(Buffer.from(key));
      return key;
    },
  };
}

/** The ways a 32-byte key could be written out. */
export function encodings(bytes: Buffer): string[] {
  return [bytes.toString('base64url'), bytes.toString('base64'), bytes.toString('hex')];
}

export interface Capture {
  logs: string[];
  /** Enrollment codes: shown once, by the response that created them. */
  codes: string[];
  /** Private keys of devices and runs: never sent anywhere. */
  privateKeys: Uint8Array[];
  /** Every response body, with what it answered. */
  responses: Array<{ what: string; status: number; text: string }>;
  /** Device keys answered in clear (by /device/issue): shown once, by that response. */
  deviceKeys: string[];
  /** Device keys answered sealed (by /device/enroll): in clear in no response and no log. */
  sealedDeviceKeys: string[];
  tokens: string[];
  values: string[];
  dataKeys: Buffer[];
  keks: Buffer[];
  dataDirs: string[];
  stores: Store[];
}

/** An empty capture. */
export function newCapture(): Capture {
  return {
    logs: [],
    codes: [],
    privateKeys: [],
    responses: [],
    deviceKeys: [],
    sealedDeviceKeys: [],
    tokens: [],
    values: [],
    dataKeys: [],
    keks: [],
    dataDirs: [],
    stores: [],
  };
}

/** `clock`: on a frozen clock, so that expiry is exercised; `pruning`: versions pruned to one. */
export type Variant = 'plain' | 'clock' | 'pruning';

/** A device key as /device/issue answers it. */
export interface Issued {
  device_key: string;
  key_id: string;
}

/** The device keys of the session's agents a, b and c; `ka2` expires after 60 seconds. */
export interface Keys {
  ka: Issued;
  kb: Issued;
  kc: Issued;
  ka2: Issued;
}

/** A capability token of agent a, and one that expires after 60 seconds. */
export interface Tokens {
  token: string;
  short: string;
}

/** A secret reference. */
export const ref = (agent: string, name: string, version?: number) =>
  `agentpack.secret://${agent}/${name}${version === undefined ? '' : `#${version}`}`;

/**
 * Starts a fresh service for one session (its data key, KEK, store and data directory recorded)
 * and returns the calls that record every answer and check its status.
 */
export async function openSession(
  capture: Capture,
  services: TestService[],
  variant: Variant,
  n: number,
) {
  const clock: ManualClock | undefined = variant === 'clock' ? manualClock(Date.now()) : undefined;
  const kek = randomBytes(32);
  capture.keks.push(kek);
  const svc = await startTestService({
    ...(clock === undefined ? {} : { clock }),
    keyring: recordingKeyring(kek, capture.dataKeys, { failUnwrapFor: '\nboom\n' }),
  });
  services.push(svc);
  capture.dataDirs.push(svc.dataDir);
  capture.stores.push(svc.store);
  const nowMs = () => clock?.now() ?? Date.now();
  const secretValue = (label: string) => {
    const v = `sv-${variant}-${label}-${randomBytes(12).toString('hex')}`;
    capture.values.push(v);
    return v;
  };

  /** A JSON POST whose answer is recorded and must have `status`. */
  const call = async (
    what: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
    status: number,
  ) => {
    const res = await svc.post(path, body, headers);
    capture.responses.push({ what: `${variant}: ${what}`, status: res.status, text: res.text });
    expect(res.status, `${variant}: ${what}: ${res.text}`).toBe(status);
    return res.body;
  };
  /** The same, byte for byte over raw HTTP. */
  const raw = async (what: string, spec: Parameters<typeof sendRaw>[1], status: number) => {
    const reply = await sendRaw(svc.url, spec);
    capture.responses.push({
      what: `${variant}: ${what}`,
      status: reply.status,
      text: reply.text,
    });
    expect(reply.status, `${variant}: ${what}: ${reply.text}`).toBe(status);
    return reply;
  };
  /** The bridge credential, a device credential, and the session's agents. */
  const B = svc.bridge;
  const D = (key: string) => svc.device(key);
  const a = `cap-a-${n}`;
  const b = `cap-b-${n}`;
  const c = `cap-c-${n}`;
  /** A signed request (enrolled device or run); a successful one is replayed and refused. */
  const signedCall = async (
    what: string,
    path: string,
    body: unknown,
    credential: [string, string],
    seed: Uint8Array,
    status: number,
    at = nowMs(),
  ) => {
    const raw = Buffer.from(JSON.stringify(body));
    const headers = {
      'content-type': 'application/json',
      [credential[0]]: credential[1],
      ...signRequest({ method: 'POST', path, body: raw, signingSeed: seed, nowMs: at }),
    };
    const send = async (label: string, expected: number) => {
      const res = await svc.request(path, { method: 'POST', headers, body: raw });
      capture.responses.push({
        what: `${variant}: ${label}`,
        status: res.status,
        text: res.text,
      });
      expect(res.status, `${variant}: ${label}: ${res.text}`).toBe(expected);
      return res.body;
    };
    const first = await send(what, status);
    if (status === 200) await send(`${what}, replayed`, 401);
    return first;
  };
  return {
    variant,
    n,
    svc,
    clock,
    capture,
    nowMs,
    secretValue,
    call,
    raw,
    signedCall,
    B,
    D,
    a,
    b,
    c,
  };
}

/** What the session's chapters act through. */
export type Session = Awaited<ReturnType<typeof openSession>>;
