/**
 * A local HTTPS OIDC issuer for tests: a self-signed certificate for 127.0.0.1 / ::1 / localhost
 * made at test time with node:crypto alone (a hand-built X.509 v3, no openssl, no dependency),
 * `/.well-known/openid-configuration` and a JWKS, RS256 / ES256 / EdDSA signing keys from jose,
 * and controls to misbehave per path (garbage, huge, slow, redirect, status, wrong issuer),
 * rotate keys and count requests. `mint` signs subject tokens shaped like Kubernetes, GitHub
 * Actions and Google ones.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

export type SigningAlg = 'RS256' | 'ES256' | 'EdDSA';

/** How a path answers. `slow` sends nothing (or, with `slow-body`, half a body) until close. */
export type Behaviour =
  | 'ok'
  | 'garbage'
  | 'array'
  | 'huge'
  | 'huge-declared'
  | 'slow'
  | 'slow-body'
  | 'redirect'
  | 'not-found'
  | 'error';

export interface IssuerSigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  publicJwk: JWK;
}

export interface OidcIssuerOptions {
  /** Serve plain http (loopback) instead of https. */
  http?: boolean;
  /** A path the issuer URL ends with, e.g. `/tenant` (discovery is then under it). */
  basePath?: string;
  /** Append a `/` to the issuer URL (OIDC Discovery strips one before the well-known path). */
  trailingSlash?: boolean;
  /** The signing keys to start with; default one of each alg. */
  algs?: SigningAlg[];
  /** The JWKS path; default `/keys`. */
  jwksPath?: string;
}

export interface MintOptions {
  alg: SigningAlg;
  /** Sign with this key (by kid); default the newest key of `alg`. */
  kid?: string;
  /** Leave `kid` out of the header. */
  omitKid?: boolean;
  /** Extra protected header members. */
  header?: Record<string, unknown>;
  /** Seconds from now to `exp`; default 600. */
  expiresIn?: number;
}

export interface OidcIssuer {
  /** The issuer URL as configured (and as discovery names it, unless overridden). */
  readonly issuer: string;
  readonly origin: string;
  readonly discoveryPath: string;
  readonly jwksPath: string;
  readonly jwksUri: string;
  /** The PEM of the self-signed certificate, to pass as `ca` (empty over http). */
  readonly ca: string;
  /** The keys published in the JWKS now, oldest first. */
  readonly keys: IssuerSigningKey[];
  /** Extra JWKS entries served after the real keys (private keys, odd types...). */
  extraJwks: Record<string, unknown>[];
  /** Overrides of the discovery document's members (e.g. `issuer`, `jwks_uri`). */
  discovery: Record<string, unknown>;
  /** The JWKS's Cache-Control header (null: none). */
  cacheControl: string | null;
  /** How each path answers (by path); default `ok`. */
  behave(path: string, behaviour: Behaviour): void;
  /** Adds a signing key to the JWKS. */
  addKey(alg: SigningAlg, kid?: string): Promise<IssuerSigningKey>;
  /** Removes a key from the JWKS (it can still mint). */
  dropKey(kid: string): void;
  /** Requests received per path (query excluded). */
  count(path: string): number;
  /** TCP connections received so far. */
  connections(): number;
  /** Resolves when a huge answer is cut off by the client (the socket closed mid-body). */
  nextAbort(): Promise<number>;
  /** Signs a JWT; `iss`, `iat` and `exp` default to this issuer, now and now + 600 s. */
  mint(claims: JWTPayload, options: MintOptions): Promise<string>;
  /** Stops the server, ending every held response and connection. */
  close(): Promise<void>;
}

// --- A minimal DER writer, enough for one self-signed certificate. ---

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  let length: Buffer;
  if (body.length < 0x80) length = Buffer.from([body.length]);
  else {
    const bytes: number[] = [];
    for (let n = body.length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, body]);
}
const seq = (...parts: Buffer[]) => der(0x30, ...parts);
const set = (...parts: Buffer[]) => der(0x31, ...parts);
const octets = (bytes: Buffer) => der(0x04, bytes);
const bits = (bytes: Buffer, unused = 0) => der(0x03, Buffer.from([unused]), bytes);
const bool = (value: boolean) => der(0x01, Buffer.from([value ? 0xff : 0]));
const explicit = (n: number, inner: Buffer) => der(0xa0 | n, inner);
/** A DER INTEGER of unsigned big-endian `bytes`: minimal (no leading zero byte), then a 0 if the top bit is set. */
function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const minimal = bytes.subarray(start);
  return der(0x02, minimal[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), minimal]) : minimal);
}
function oid(text: string): Buffer {
  const [a, b, ...rest] = text.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let n = arc >> 7; n > 0; n >>= 7) chunk.unshift(0x80 | (n & 0x7f));
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
}
function utcTime(date: Date): Buffer {
  const iso = date.toISOString();
  const text = iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13);
  return der(0x17, Buffer.from(`${text}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`, 'ascii'));
}
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/**
 * A self-signed ECDSA P-256 certificate (v3) for localhost, 127.0.0.1 and ::1, valid from an
 * hour ago for a day, as PEM, with its private key.
 */
export function selfSignedCertificate(): { cert: string; key: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(
    set(
      seq(
        oid('2.5.4.3'),
        der(0x0c, Buffer.from(`agentpack test issuer ${randomBytes(6).toString('hex')}`)),
      ),
    ),
  );
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const now = Date.now();
  const altNames = seq(
    der(0x82, Buffer.from('localhost', 'ascii')),
    der(0x87, Buffer.from([127, 0, 0, 1])),
    der(0x87, Buffer.concat([Buffer.alloc(15), Buffer.from([1])])),
  );
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      seq(
        extension('2.5.29.19', true, seq(bool(true))),
        // digitalSignature (bit 0) and keyCertSign (bit 5).
        extension('2.5.29.15', true, bits(Buffer.from([0x84]), 2)),
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))),
        extension('2.5.29.17', false, altNames),
      ),
    ),
  );
  const certificate = seq(tbs, ecdsaSha256, bits(sign('sha256', tbs, privateKey)));
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n');
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`,
    key: privateKey,
  };
}

// --- Subject token shapes. ---

/** Claims of a Kubernetes projected service-account token. */
export function kubernetesClaims(input: {
  namespace: string;
  serviceAccount: string;
  audience: string | string[];
  pod?: string;
}): JWTPayload {
  return {
    sub: `system:serviceaccount:${input.namespace}:${input.serviceAccount}`,
    aud: input.audience,
    'kubernetes.io': {
      namespace: input.namespace,
      serviceaccount: { name: input.serviceAccount, uid: '0f6c1b0e-4b7c-4a43-9a35-1c0b0f0c0d01' },
      pod: {
        name: input.pod ?? `${input.serviceAccount}-7d9f8c-abcde`,
        uid: '6a1d2c3e-5f40-4b1a-8e2d-7c9b0a1f2e3d',
      },
    },
  };
}

/** Claims of a GitHub Actions OIDC token. */
export function githubActionsClaims(input: {
  repository: string;
  ref?: string;
  audience: string;
  workflow?: string;
  environment?: string;
}): JWTPayload {
  const ref = input.ref ?? 'refs/heads/main';
  const [owner] = input.repository.split('/');
  const workflow = input.workflow ?? 'deploy';
  return {
    sub: input.environment
      ? `repo:${input.repository}:environment:${input.environment}`
      : `repo:${input.repository}:ref:${ref}`,
    aud: input.audience,
    repository: input.repository,
    repository_owner: owner,
    repository_id: '123456789',
    ref,
    ref_type: 'branch',
    sha: '0123456789abcdef0123456789abcdef01234567',
    workflow,
    job_workflow_ref: `${input.repository}/.github/workflows/${workflow}.yml@${ref}`,
    event_name: 'push',
    run_id: '9876543210',
    run_attempt: '1',
    actor: 'octocat',
    ...(input.environment ? { environment: input.environment } : {}),
  };
}

/** Claims of a Google identity token for a service account. */
export function googleClaims(input: { email: string; audience: string }): JWTPayload {
  return {
    sub: '112233445566778899001',
    azp: '112233445566778899001',
    aud: input.audience,
    email: input.email,
    email_verified: true,
  };
}

// --- The server. ---

async function newKey(alg: SigningAlg, kid: string): Promise<IssuerSigningKey> {
  const options =
    alg === 'RS256' ? { modulusLength: 2048, extractable: true } : { extractable: true };
  const pair = await generateKeyPair(alg, options);
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey: pair.privateKey, publicJwk };
}

/** Starts an issuer on a free loopback port. */
export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const basePath = options.basePath ?? '';
  const jwksPath = options.jwksPath ?? `${basePath}/keys`;
  const discoveryPath = `${basePath}/.well-known/openid-configuration`;
  const certificate = options.http ? null : selfSignedCertificate();
  const counts = new Map<string, number>();
  const behaviours = new Map<string, Behaviour>();
  const held = new Set<ServerResponse>();
  let connectionCount = 0;
  let abortWaiters: ((bytes: number) => void)[] = [];
  let sequence = 0;

  const state = {
    keys: [] as IssuerSigningKey[],
    extraJwks: [] as Record<string, unknown>[],
    discovery: {} as Record<string, unknown>,
    cacheControl: 'public, max-age=300' as string | null,
  };
  let issuer = '';
  let origin = '';

  function send(res: ServerResponse, status: number, body: string, headers = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  }

  function answer(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const behaviour = behaviours.get(path) ?? 'ok';
    if (path !== discoveryPath && path !== jwksPath) return send(res, 404, '{}');
    switch (behaviour) {
      case 'garbage':
        return send(res, 200, '<html>not json, maybe a captive portal</html>');
      case 'array':
        return send(res, 200, '[{"keys": []}]');
      case 'not-found':
        return send(res, 404, '{"error": "not found"}');
      case 'error':
        return send(res, 500, '{"error": "boom"}');
      case 'redirect':
        res.writeHead(302, { location: `${origin}${path}?moved=1` });
        return void res.end();
      case 'huge-declared':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 10 << 20 });
        res.write('{"keys": [');
        held.add(res);
        return;
      case 'slow':
        held.add(res);
        return;
      case 'slow-body':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"keys": [');
        held.add(res);
        return;
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/json' });
        let written = 0;
        const chunk = Buffer.from(`"${'x'.repeat(16 * 1024 - 3)}",`);
        res.on('close', () => {
          if (!res.writableFinished) {
            const waiters = abortWaiters;
            abortWaiters = [];
            for (const w of waiters) w(written);
          }
        });
        const pump = (): void => {
          res.write('{"padding": [');
          // At most 8 MiB, written as fast as the client drains it.
          const next = (): void => {
            while (written < 8 << 20) {
              written += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', next);
            }
            res.end('"end"]}');
          };
          next();
        };
        pump();
        return;
      }
      case 'ok':
        break;
    }
    if (path === discoveryPath) {
      const doc = {
        issuer,
        jwks_uri: `${origin}${jwksPath}`,
        id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'],
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        ...state.discovery,
      };
      return send(res, 200, JSON.stringify(doc), { 'cache-control': 'max-age=3600' });
    }
    const jwks = { keys: [...state.keys.map((k) => k.publicJwk), ...state.extraJwks] };
    send(
      res,
      200,
      JSON.stringify(jwks),
      state.cacheControl === null ? {} : { 'cache-control': state.cacheControl },
    );
  }

  const server = certificate
    ? createHttpsServer(
        { cert: certificate.cert, key: certificate.key.export({ type: 'pkcs8', format: 'pem' }) },
        answer,
      )
    : createHttpServer(answer);
  server.on('connection', () => connectionCount++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `${certificate ? 'https' : 'http'}://127.0.0.1:${port}`;
  issuer = `${origin}${basePath}${options.trailingSlash ? '/' : ''}`;

  async function addKey(alg: SigningAlg, kid?: string): Promise<IssuerSigningKey> {
    const key = await newKey(alg, kid ?? `${alg.toLowerCase()}-${++sequence}`);
    state.keys.push(key);
    return key;
  }
  for (const alg of options.algs ?? ['RS256', 'ES256', 'EdDSA']) await addKey(alg);
  const minted = new Map<string, IssuerSigningKey>(state.keys.map((k) => [k.kid, k]));

  return {
    issuer,
    origin,
    discoveryPath,
    jwksPath,
    jwksUri: `${origin}${jwksPath}`,
    ca: certificate?.cert ?? '',
    get keys() {
      return state.keys;
    },
    get extraJwks() {
      return state.extraJwks;
    },
    set extraJwks(value) {
      state.extraJwks = value;
    },
    get discovery() {
      return state.discovery;
    },
    set discovery(value) {
      state.discovery = value;
    },
    get cacheControl() {
      return state.cacheControl;
    },
    set cacheControl(value) {
      state.cacheControl = value;
    },
    behave(path, behaviour) {
      behaviours.set(path, behaviour);
    },
    async addKey(alg, kid) {
      const key = await addKey(alg, kid);
      minted.set(key.kid, key);
      return key;
    },
    dropKey(kid) {
      state.keys = state.keys.filter((k) => k.kid !== kid);
    },
    count: (path) => counts.get(path) ?? 0,
    connections: () => connectionCount,
    nextAbort: () => new Promise((resolve) => abortWaiters.push(resolve)),
    async mint(claims, mintOptions) {
      const key =
        mintOptions.kid !== undefined
          ? minted.get(mintOptions.kid)
          : [...minted.values()].reverse().find((k) => k.alg === mintOptions.alg);
      if (key === undefined || key.alg !== mintOptions.alg) {
        throw new Error(`mint: no ${mintOptions.alg} key ${mintOptions.kid ?? ''}`);
      }
      const now = Math.floor(Date.now() / 1000);
      const header = {
        alg: mintOptions.alg,
        typ: 'JWT',
        ...(mintOptions.omitKid ? {} : { kid: key.kid }),
        ...mintOptions.header,
      };
      return new SignJWT({
        iss: issuer,
        iat: now,
        exp: now + (mintOptions.expiresIn ?? 600),
        ...claims,
      })
        .setProtectedHeader(header)
        .sign(key.privateKey);
    },
    async close() {
      for (const res of held) res.destroy();
      held.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
