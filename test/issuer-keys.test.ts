/**
 * Issuer keys for /auth/exchange, over a real local HTTPS OIDC issuer: the bounded fetch
 * (TLS trust, size cap, deadline, no redirects, https only), JWKS parsing and its refusals, and
 * the per-issuer cache (fetched once, one refetch a minute on an unknown kid, TTL, rotation,
 * stale keys when the issuer is down, no poisoning by a bad answer, pinned keys never fetched).
 * Time moves only through an injected clock; the only real waits are short fetch deadlines.
 */
import { generateKeyPairSync, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  fetchJson,
  FetchJsonError,
  maxAgeOf,
  type FetchJson,
} from '../functions/src/adapters/https-fetch.js';
import { ApiError } from '../functions/src/core/errors.js';
import {
  createIssuerKeys,
  discoveryUrl,
  FAILED_FETCH_RETRY_MS,
  keysTtlMs,
  MAX_STALE_MS,
  MIN_REFETCH_INTERVAL_MS,
  parseVerificationKeys,
  type IssuerKeyAlg,
  type IssuerKeysOptions,
} from '../functions/src/core/issuer-keys.js';
import { manualClock } from './helpers/clock.js';
import {
  githubActionsClaims,
  googleClaims,
  kubernetesClaims,
  selfSignedCertificate,
  startOidcIssuer,
  type Behaviour,
  type OidcIssuer,
  type OidcIssuerOptions,
} from './helpers/oidc-issuer.js';

const open: OidcIssuer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((issuer) => issuer.close()));
});

async function issuerFor(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const issuer = await startOidcIssuer(options);
  open.push(issuer);
  return issuer;
}

/** Whether `key` verifies the compact JWS `token` under `alg` (what /auth/exchange will do). */
function verifies(token: string, key: KeyObject, alg: IssuerKeyAlg): boolean {
  const [h, p, s] = token.split('.');
  const data = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s!, 'base64url');
  if (alg === 'RS256') return verify('sha256', data, key, signature);
  if (alg === 'ES256') return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  return verify(null, data, key, signature);
}

function headerOf(token: string): { kid?: string; alg: IssuerKeyAlg } {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
}

async function fetchFailure(promise: Promise<unknown>): Promise<FetchJsonError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FetchJsonError);
  return error as FetchJsonError;
}

async function unavailable(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  expect((error as ApiError).code).toBe('unavailable');
  expect((error as ApiError).status).toBe(503);
  expect((error as ApiError).details).toBeUndefined();
  return error as ApiError;
}

/** A source over the issuer with a clock and a fetch that records every URL it is asked for. */
function keysOver(issuer: OidcIssuer, extra: Partial<IssuerKeysOptions> = {}) {
  const clock = manualClock();
  const urls: string[] = [];
  const counted: FetchJson = (url, options) => {
    urls.push(url);
    return fetchJson(url, options);
  };
  const keys = createIssuerKeys({ fetchJson: counted, clock, ca: issuer.ca, ...extra });
  const ref = { issuer: issuer.issuer, jwks: null };
  return { clock, urls, keys, ref };
}

describe('the test issuer', () => {
  it('has a self-signed certificate for 127.0.0.1, ::1 and localhost, made without openssl', () => {
    const { cert } = selfSignedCertificate();
    const x509 = new X509Certificate(cert);
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkIP('::1')).toBeDefined();
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(x509.checkIssued(x509)).toBe(true);
  });

  it('mints Kubernetes, GitHub Actions and Google shaped tokens', async () => {
    const issuer = await issuerFor();
    const k8s = await issuer.mint(
      kubernetesClaims({ namespace: 'ci', serviceAccount: 'builder', audience: 'agentpack' }),
      { alg: 'RS256' },
    );
    const gha = await issuer.mint(
      githubActionsClaims({ repository: 'org/repo', audience: 'agentpack' }),
      { alg: 'ES256' },
    );
    const google = await issuer.mint(
      googleClaims({ email: 'sa@p.iam.gserviceaccount.com', audience: 'agentpack' }),
      { alg: 'EdDSA', header: { typ: 'at+jwt' } },
    );
    const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString());
    expect(claims(k8s)).toMatchObject({
      iss: issuer.issuer,
      sub: 'system:serviceaccount:ci:builder',
      'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'builder' } },
    });
    expect(claims(gha)).toMatchObject({
      sub: 'repo:org/repo:ref:refs/heads/main',
      repository: 'org/repo',
      ref: 'refs/heads/main',
      job_workflow_ref: 'org/repo/.github/workflows/deploy.yml@refs/heads/main',
    });
    expect(claims(google).sub).toMatch(/^[0-9]+$/);
    expect(claims(google).email).toBe('sa@p.iam.gserviceaccount.com');
    expect(headerOf(google)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    expect(headerOf(gha).kid).toBe(issuer.keys[1]!.kid);
  });
});

describe('fetchJson', () => {
  it('leaves nothing listening once the issuer is closed, held answers included', async () => {
    const issuer = await issuerFor();
    issuer.behave(issuer.jwksPath, 'slow');
    const held = fetchFailure(fetchJson(issuer.jwksUri, { ca: issuer.ca, timeoutMs: 10_000 }));
    await expect.poll(() => issuer.count(issuer.jwksPath)).toBe(1);
    await issuer.close();
    expect((await held).reason).toBe('network');
    const after = await fetchFailure(fetchJson(issuer.jwksUri, { ca: issuer.ca }));
    expect(after.message).toMatch(/ECONNREFUSED/);
  });

  it('GETs a JSON object over https trusting the given ca, with its max-age', async () => {
    const issuer = await issuerFor();
    const result = await fetchJson(issuer.jwksUri, { ca: issuer.ca, maxBytes: 65536 });
    expect((result.body['keys'] as unknown[]).length).toBe(3);
    expect(result.maxAgeSeconds).toBe(300);
    issuer.cacheControl = null;
    expect((await fetchJson(issuer.jwksUri, { ca: issuer.ca })).maxAgeSeconds).toBeNull();
    expect(maxAgeOf('no-cache, MAX-AGE=42')).toBe(42);
    expect(maxAgeOf(['private', 'max-age=7'])).toBe(7);
    expect(maxAgeOf('max-age=soon')).toBeNull();
  });

  it('refuses the self-signed issuer without its ca (TLS verification stays on)', async () => {
    const issuer = await issuerFor();
    const error = await fetchFailure(fetchJson(issuer.jwksUri));
    expect(error.reason).toBe('tls');
    expect(issuer.count(issuer.jwksPath)).toBe(0);
    const other = selfSignedCertificate().cert;
    expect((await fetchFailure(fetchJson(issuer.jwksUri, { ca: other }))).reason).toBe('tls');
  });

  it('aborts the socket as soon as the body passes the cap', async () => {
    const issuer = await issuerFor();
    issuer.behave(issuer.jwksPath, 'huge');
    const aborted = issuer.nextAbort();
    const error = await fetchFailure(fetchJson(issuer.jwksUri, { ca: issuer.ca, maxBytes: 4096 }));
    expect(error.reason).toBe('too_large');
    // The server saw the connection close long before its 8 MiB were written.
    expect(await aborted).toBeLessThan(8 << 20);
    issuer.behave(issuer.jwksPath, 'huge-declared');
    const declared = await fetchFailure(fetchJson(issuer.jwksUri, { ca: issuer.ca }));
    expect(declared.reason).toBe('too_large');
  });

  it('gives up at the deadline, whether the headers or the body never come', async () => {
    const issuer = await issuerFor();
    issuer.behave(issuer.jwksPath, 'slow');
    const start = Date.now();
    const error = await fetchFailure(fetchJson(issuer.jwksUri, { ca: issuer.ca, timeoutMs: 150 }));
    expect(error.reason).toBe('timeout');
    expect(Date.now() - start).toBeLessThan(5_000);
    issuer.behave(issuer.jwksPath, 'slow-body');
    const body = await fetchFailure(fetchJson(issuer.jwksUri, { ca: issuer.ca, timeoutMs: 150 }));
    expect(body.reason).toBe('timeout');
  });

  it('never follows a redirect, and wants 200 and a JSON object', async () => {
    const issuer = await issuerFor();
    const ca = issuer.ca;
    const cases: [Behaviour, string][] = [
      ['redirect', 'redirect'],
      ['not-found', 'bad_status'],
      ['error', 'bad_status'],
      ['garbage', 'not_json'],
      ['array', 'not_object'],
    ];
    for (const [behaviour, reason] of cases) {
      issuer.behave(issuer.jwksPath, behaviour);
      const error = await fetchFailure(fetchJson(issuer.jwksUri, { ca }));
      expect(error.reason).toBe(reason);
      // The message is safe to log: it never echoes what the server sent.
      expect(error.message).not.toMatch(/captive|boom|not found|"keys"/);
    }
    // One request per case: the redirect (to the same path) was not followed.
    expect(issuer.count(issuer.jwksPath)).toBe(cases.length);
  });

  it('refuses plain http before connecting unless the host is loopback', async () => {
    const issuer = await issuerFor({ http: true });
    const port = new URL(issuer.origin).port;
    for (const url of [
      `http://192.168.77.1:${port}/keys`,
      'http://issuer.invalid/keys',
      `http://10.0.0.1:${port}/keys`,
    ]) {
      expect((await fetchFailure(fetchJson(url))).reason).toBe('insecure_url');
    }
    expect(issuer.connections()).toBe(0);
    for (const url of ['ftp://127.0.0.1/keys', 'not a url', 'https://user:pw@127.0.0.1/keys']) {
      const error = await fetchFailure(fetchJson(url));
      expect(error.reason).toBe('bad_url');
      expect(error.message).not.toContain('pw');
    }
    expect(issuer.connections()).toBe(0);
    const loopback = await fetchJson(`http://localhost:${port}/keys`);
    expect(loopback.body['keys']).toHaveLength(3);
    await fetchJson(`http://127.0.0.1:${port}/keys`);
    expect(issuer.count('/keys')).toBe(2);
  });
});

describe('parseVerificationKeys', () => {
  it('parses RS256, ES256 and EdDSA public keys that verify the issuer tokens', async () => {
    const issuer = await issuerFor();
    const parsed = parseVerificationKeys({ keys: issuer.keys.map((k) => k.publicJwk) }, 'test');
    expect(parsed.map((k) => [k.kid, k.alg])).toEqual(issuer.keys.map((k) => [k.kid, k.alg]));
    for (const key of parsed) {
      expect(key.key.type).toBe('public');
      const token = await issuer.mint({ sub: 'x', aud: 'y' }, { alg: key.alg });
      expect(verifies(token, key.key, key.alg)).toBe(true);
    }
  });

  it('takes bare keys (no kid, alg, use) and key_ops with verify', async () => {
    const issuer = await issuerFor({ algs: ['ES256'] });
    const { kid: _kid, alg: _alg, use: _use, ...bare } = issuer.keys[0]!.publicJwk;
    const [key] = parseVerificationKeys({ keys: [{ ...bare, key_ops: ['verify'] }] }, 'test');
    expect(key).toMatchObject({ kid: null, alg: 'ES256' });
  });

  it('refuses a private key (naming it, never its material), or skips it for discovery', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'leaked' };
    let message = '';
    try {
      parseVerificationKeys({ keys: [jwk] }, 'the pinned JWKS');
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).code).toBe('invalid_argument');
      message = (e as Error).message;
    }
    expect(message).toBe(
      'the pinned JWKS: key #1 ("leaked") is a private key: publish only public keys',
    );
    for (const member of ['p', 'q', 'dp', 'dq', 'qi', 'k']) {
      const { d: _d, ...pub } = jwk;
      expect(() => parseVerificationKeys({ keys: [{ ...pub, [member]: 'AQAB' }] }, 's')).toThrow(
        /private key/,
      );
    }
    const pub = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid: 'public' };
    const skipped = parseVerificationKeys({ keys: [jwk, pub] }, 'd', { privateKeys: 'skip' });
    expect(skipped.map((k) => k.kid)).toEqual(['public']);
    expect(skipped[0]!.key.type).toBe('public');
    expect(() => parseVerificationKeys({ keys: [jwk] }, 'd', { privateKeys: 'skip' })).toThrow(
      /no usable .*key #1 \("leaked"\) is a private key/,
    );
  });

  it('skips keys for something else, and a JWKS of only those is an error that says why', async () => {
    const issuer = await issuerFor();
    const [rsa, ec, ed] = issuer.keys.map((k) => k.publicJwk);
    const short = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      format: 'jwk',
    });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({
      format: 'jwk',
    });
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
    const bad: [unknown, RegExp][] = [
      [{ ...rsa, alg: 'RS384' }, /"alg" other than "RS256"/],
      [{ ...ec, alg: 'ES384' }, /"alg" other than "ES256"/],
      [{ ...ed, alg: 'RS256' }, /"alg" other than "EdDSA"/],
      [{ ...rsa, use: 'enc' }, /"use" other than "sig"/],
      [{ ...ec, key_ops: ['sign'] }, /"key_ops" without "verify"/],
      [{ ...ec, key_ops: 'verify' }, /"key_ops" without "verify"/],
      [
        { ...short, kid: 'short' },
        /key #1 \("short"\) has an RSA modulus outside 2048 to 8192 bits/,
      ],
      [p384, /not on the P-256 curve/],
      [x25519, /not an Ed25519 key/],
      [{ kty: 'XYZ', kid: 'odd' }, /unsupported "kty"/],
      [{ ...ec, x: `${ec!.x}=` }, /canonical base64url/],
      [{ ...ed, x: Buffer.alloc(32).toString('base64url') }, /small-order/],
      [{ ...rsa, kid: 42 }, /"kid" that is not/],
      ['not an object', /not an object/],
    ];
    for (const [jwk, why] of bad) {
      let message = '';
      try {
        parseVerificationKeys({ keys: [jwk] }, 'src');
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/^src: the JWKS has no usable RS256, ES256 or EdDSA public key/);
      expect(message).toMatch(why);
      // Never key material, whatever the problem.
      for (const value of [rsa!.n, ec!.x, ec!.y, ed!.x, short.n, p384.x]) {
        expect(message).not.toContain(value!.slice(0, 16));
      }
      const mixed = parseVerificationKeys({ keys: [jwk, ec] }, 'src');
      expect(mixed.map((k) => k.kid)).toEqual([ec!.kid]);
    }
  });

  it('refuses a JWKS that is not one, is empty or has too many keys; skips a repeated kid', async () => {
    const issuer = await issuerFor({ algs: ['EdDSA'] });
    const ed = issuer.keys[0]!.publicJwk;
    expect(() => parseVerificationKeys({ keys: [] }, 's')).toThrow(/no usable .*it is empty/);
    expect(() => parseVerificationKeys([ed], 's')).toThrow(/an object with a "keys" array/);
    expect(() => parseVerificationKeys({ keys: ed }, 's')).toThrow(/"keys" array/);
    expect(() => parseVerificationKeys(null, 's')).toThrow(/"keys" array/);
    const many = Array.from({ length: 101 }, (_, i) => ({ ...ed, kid: `k${i}` }));
    expect(() => parseVerificationKeys({ keys: many }, 's')).toThrow(/101 keys, more than 100/);
    expect(parseVerificationKeys({ keys: many.slice(1) }, 's')).toHaveLength(100);
    const twice = parseVerificationKeys({ keys: [ed, ed] }, 's');
    expect(twice).toHaveLength(1);
  });
});

describe('createIssuerKeys: discovered issuers', () => {
  it('fetches discovery and the JWKS once, then serves every alg from the cache', async () => {
    const issuer = await issuerFor();
    const { keys, ref, urls } = keysOver(issuer);
    for (let round = 0; round < 3; round++) {
      for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
        const token = await issuer.mint({ sub: 's', aud: 'a' }, { alg });
        const key = await keys.keyFor(ref, headerOf(token));
        expect(key).not.toBeNull();
        expect(verifies(token, key!, alg)).toBe(true);
      }
    }
    expect(issuer.count(issuer.discoveryPath)).toBe(1);
    expect(issuer.count(issuer.jwksPath)).toBe(1);
    expect(urls).toEqual([`${issuer.origin}/.well-known/openid-configuration`, issuer.jwksUri]);
  });

  it('shares one fetch among concurrent first callers', async () => {
    const issuer = await issuerFor();
    const { keys, ref } = keysOver(issuer);
    const token = await issuer.mint({}, { alg: 'ES256' });
    const found = await Promise.all(
      Array.from({ length: 20 }, () => keys.keyFor(ref, headerOf(token))),
    );
    expect(found.every((k) => k !== null && k === found[0])).toBe(true);
    expect(issuer.count(issuer.discoveryPath)).toBe(1);
    expect(issuer.count(issuer.jwksPath)).toBe(1);
  });

  it('strips one trailing slash before the well-known path, and keeps a path issuer', async () => {
    expect(discoveryUrl('https://a.example/')).toBe(
      'https://a.example/.well-known/openid-configuration',
    );
    expect(discoveryUrl('https://a.example/t')).toBe(
      'https://a.example/t/.well-known/openid-configuration',
    );
    const issuer = await issuerFor({ basePath: '/tenant', trailingSlash: true });
    expect(issuer.issuer.endsWith('/tenant/')).toBe(true);
    const { keys, ref } = keysOver(issuer);
    const token = await issuer.mint({}, { alg: 'RS256' });
    expect(await keys.keyFor(ref, headerOf(token))).not.toBeNull();
    expect(issuer.count('/tenant/.well-known/openid-configuration')).toBe(1);
    // The issuer must match exactly: without the slash it is another issuer.
    const bare = keysOver(issuer);
    const noSlash = { issuer: issuer.issuer.slice(0, -1), jwks: null };
    await unavailable(bare.keys.keyFor(noSlash, headerOf(token)));
  });

  it('refetches at most once a minute on an unknown kid, however many calls', async () => {
    const issuer = await issuerFor();
    const { keys, ref, clock } = keysOver(issuer);
    const header = { kid: 'nobody', alg: 'ES256' as const };
    expect(await keys.keyFor(ref, { kid: issuer.keys[1]!.kid, alg: 'ES256' })).not.toBeNull();
    expect(issuer.count(issuer.jwksPath)).toBe(1);
    clock.advance(MIN_REFETCH_INTERVAL_MS);
    const concurrent = await Promise.all(
      Array.from({ length: 10 }, () => keys.keyFor(ref, header)),
    );
    expect(concurrent).toEqual(Array(10).fill(null));
    for (let i = 0; i < 10; i++) {
      expect(await keys.keyFor(ref, header)).toBeNull();
      clock.advance(5_000);
    }
    expect(issuer.count(issuer.jwksPath)).toBe(2);
    expect(issuer.count(issuer.discoveryPath)).toBe(2);
    clock.advance(MIN_REFETCH_INTERVAL_MS - 50_000 - 1);
    expect(await keys.keyFor(ref, header)).toBeNull();
    expect(issuer.count(issuer.jwksPath)).toBe(2);
    clock.advance(1);
    expect(await keys.keyFor(ref, header)).toBeNull();
    expect(issuer.count(issuer.jwksPath)).toBe(3);
  });

  it('picks up a key rotated in at the issuer on its unknown kid, and drops the old at expiry', async () => {
    const issuer = await issuerFor({ algs: ['RS256'] });
    const { keys, ref, clock } = keysOver(issuer);
    const old = issuer.keys[0]!;
    const oldToken = await issuer.mint({}, { alg: 'RS256', kid: old.kid });
    expect(await keys.keyFor(ref, headerOf(oldToken))).not.toBeNull();
    clock.advance(MIN_REFETCH_INTERVAL_MS);
    const next = await issuer.addKey('RS256', 'rotated-in');
    issuer.dropKey(old.kid);
    const newToken = await issuer.mint({}, { alg: 'RS256', kid: next.kid });
    const key = await keys.keyFor(ref, headerOf(newToken));
    expect(key).not.toBeNull();
    expect(verifies(newToken, key!, 'RS256')).toBe(true);
    expect(verifies(oldToken, key!, 'RS256')).toBe(false);
    expect(issuer.count(issuer.jwksPath)).toBe(2);
    // The refetch brought the JWKS without the old key: it is gone at once.
    expect(await keys.keyFor(ref, headerOf(oldToken))).toBeNull();
  });

  it('expires by TTL: max-age clamped to [1 min, 1 h], 10 min without one', async () => {
    expect(keysTtlMs(null)).toBe(600_000);
    expect(keysTtlMs(5)).toBe(60_000);
    expect(keysTtlMs(300)).toBe(300_000);
    expect(keysTtlMs(86_400)).toBe(3_600_000);
    const issuer = await issuerFor({ algs: ['EdDSA'] });
    const header = { kid: issuer.keys[0]!.kid, alg: 'EdDSA' as const };
    for (const [cacheControl, ttl] of [
      ['public, max-age=300', 300_000],
      ['max-age=1', 60_000],
      ['max-age=999999', 3_600_000],
      [null, 600_000],
    ] as const) {
      issuer.cacheControl = cacheControl;
      const { keys, ref, clock, urls } = keysOver(issuer);
      await keys.keyFor(ref, header);
      clock.advance(ttl - 1);
      await keys.keyFor(ref, header);
      expect(urls).toHaveLength(2);
      clock.advance(1);
      expect(await keys.keyFor(ref, header)).not.toBeNull();
      expect(urls).toHaveLength(4);
    }
  });

  it('selects without a kid only the one key of the alg, and never across algs', async () => {
    const issuer = await issuerFor({ algs: ['RS256', 'ES256', 'ES256'] });
    const { keys, ref } = keysOver(issuer);
    const rs = await issuer.mint({}, { alg: 'RS256', omitKid: true });
    const key = await keys.keyFor(ref, headerOf(rs));
    expect(verifies(rs, key!, 'RS256')).toBe(true);
    expect(await keys.keyFor(ref, { alg: 'ES256' })).toBeNull();
    expect(await keys.keyFor(ref, { kid: issuer.keys[0]!.kid, alg: 'ES256' })).toBeNull();
    expect(
      await keys.keyFor(ref, { kid: issuer.keys[0]!.kid, alg: 'HS256' as 'ES256' }),
    ).toBeNull();
    expect(await keys.keyFor(ref, { kid: issuer.keys[2]!.kid, alg: 'ES256' })).not.toBeNull();
    // None of these were a reason to refetch.
    expect(issuer.count(issuer.jwksPath)).toBe(1);
  });

  /** Each way an issuer can answer badly, and what it touches. */
  const failures: { name: string; breakIt(i: OidcIssuer): void; jwksFetched: boolean }[] = [
    {
      name: 'garbage discovery',
      breakIt: (i) => i.behave(i.discoveryPath, 'garbage'),
      jwksFetched: false,
    },
    { name: 'garbage JWKS', breakIt: (i) => i.behave(i.jwksPath, 'garbage'), jwksFetched: true },
    { name: 'a JWKS array', breakIt: (i) => i.behave(i.jwksPath, 'array'), jwksFetched: true },
    { name: 'a huge JWKS', breakIt: (i) => i.behave(i.jwksPath, 'huge'), jwksFetched: true },
    {
      name: 'a huge discovery',
      breakIt: (i) => i.behave(i.discoveryPath, 'huge'),
      jwksFetched: false,
    },
    { name: 'a slow JWKS', breakIt: (i) => i.behave(i.jwksPath, 'slow-body'), jwksFetched: true },
    {
      name: 'a slow discovery',
      breakIt: (i) => i.behave(i.discoveryPath, 'slow'),
      jwksFetched: false,
    },
    {
      name: 'a redirect',
      breakIt: (i) => i.behave(i.discoveryPath, 'redirect'),
      jwksFetched: false,
    },
    { name: 'a 500', breakIt: (i) => i.behave(i.jwksPath, 'error'), jwksFetched: true },
    {
      name: 'a wrong issuer in discovery',
      breakIt: (i) => (i.discovery = { issuer: 'https://attacker.example' }),
      jwksFetched: false,
    },
    {
      name: 'a plain-http jwks_uri',
      breakIt: (i) => (i.discovery = { jwks_uri: 'http://keys.example/jwks' }),
      jwksFetched: false,
    },
    {
      name: 'a jwks_uri that is not a URL',
      breakIt: (i) => (i.discovery = { jwks_uri: 42 }),
      jwksFetched: false,
    },
    {
      name: 'a JWKS of attacker keys with private parts only',
      breakIt: (i) => {
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        i.keys.splice(0);
        i.extraJwks = [{ ...privateKey.export({ format: 'jwk' }), kid: 'evil' }];
      },
      jwksFetched: true,
    },
    { name: 'an empty JWKS', breakIt: (i) => i.keys.splice(0), jwksFetched: true },
  ];

  for (const failure of failures) {
    it(`${failure.name}: unavailable with nothing cached, and no poisoning of good keys`, async () => {
      const issuer = await issuerFor({ algs: ['ES256'] });
      const good = issuer.keys[0]!;
      const header = { kid: good.kid, alg: 'ES256' as const };
      const token = await issuer.mint({}, { alg: 'ES256' });
      const restore = () => {
        issuer.behave(issuer.discoveryPath, 'ok');
        issuer.behave(issuer.jwksPath, 'ok');
        issuer.discovery = {};
        issuer.extraJwks = [];
        if (!issuer.keys.includes(good)) issuer.keys.push(good);
      };

      // Cold: the bad answer is unavailable, and nothing of it is kept.
      failure.breakIt(issuer);
      const cold = keysOver(issuer, { timeoutMs: 200 });
      const error = await unavailable(cold.keys.keyFor(cold.ref, header));
      expect(error.message).toBe("the issuer's keys cannot be fetched");
      expect(issuer.count(issuer.jwksPath) > 0).toBe(failure.jwksFetched);
      // Within the retry delay, no new fetch; after it, a good answer is taken.
      await unavailable(cold.keys.keyFor(cold.ref, header));
      expect(cold.urls).toHaveLength(failure.jwksFetched ? 2 : 1);
      restore();
      cold.clock.advance(FAILED_FETCH_RETRY_MS);
      expect(verifies(token, (await cold.keys.keyFor(cold.ref, header))!, 'ES256')).toBe(true);

      // Warm: a bad answer to a refetch changes nothing.
      const warm = keysOver(issuer, { timeoutMs: 200 });
      const cached = await warm.keys.keyFor(warm.ref, header);
      expect(cached).not.toBeNull();
      failure.breakIt(issuer);
      warm.clock.advance(MIN_REFETCH_INTERVAL_MS);
      // An unknown kid refetches, fails, and the known keys stay.
      expect(await warm.keys.keyFor(warm.ref, { kid: 'evil', alg: 'ES256' })).toBeNull();
      expect(warm.urls.length).toBeGreaterThan(2);
      expect(await warm.keys.keyFor(warm.ref, header)).toBe(cached);
      // Expired: the refetch fails, and the stale keys serve.
      warm.clock.advance(300_000);
      const before = warm.urls.length;
      expect(await warm.keys.keyFor(warm.ref, header)).toBe(cached);
      expect(warm.urls.length).toBeGreaterThan(before);
      // Once the issuer is well again, its answer is taken.
      restore();
      warm.clock.advance(MIN_REFETCH_INTERVAL_MS);
      const fresh = await warm.keys.keyFor(warm.ref, header);
      expect(fresh).not.toBe(cached);
      expect(verifies(token, fresh!, 'ES256')).toBe(true);
    });
  }

  it('serves stale keys for up to 24 h past expiry while the issuer is down, then is unavailable', async () => {
    const issuer = await issuerFor({ algs: ['ES256'] });
    const { keys, ref, clock, urls } = keysOver(issuer);
    const header = { kid: issuer.keys[0]!.kid, alg: 'ES256' as const };
    const cached = await keys.keyFor(ref, header);
    issuer.behave(issuer.discoveryPath, 'error');
    clock.advance(300_000 + MAX_STALE_MS - 1);
    expect(await keys.keyFor(ref, header)).toBe(cached);
    const attempts = urls.length;
    clock.advance(1);
    // Within a minute of the last attempt: no fetch, and too old to serve.
    await unavailable(keys.keyFor(ref, header));
    expect(urls).toHaveLength(attempts);
    clock.advance(MIN_REFETCH_INTERVAL_MS);
    await unavailable(keys.keyFor(ref, header));
    expect(urls).toHaveLength(attempts + 1);
    issuer.behave(issuer.discoveryPath, 'ok');
    clock.advance(MIN_REFETCH_INTERVAL_MS);
    expect(await keys.keyFor(ref, header)).not.toBeNull();
  });

  it('refuses a plain-http (non-loopback) issuer without connecting anywhere', async () => {
    const { keys, urls } = keysOver(await issuerFor());
    await unavailable(
      keys.keyFor({ issuer: 'http://issuer.example', jwks: null }, { alg: 'RS256' }),
    );
    expect(urls).toEqual(['http://issuer.example/.well-known/openid-configuration']);
  });

  it('trusts nothing self-signed unless given its ca', async () => {
    const issuer = await issuerFor();
    const keys = createIssuerKeys({ fetchJson, clock: manualClock() });
    await unavailable(keys.keyFor({ issuer: issuer.issuer, jwks: null }, { alg: 'RS256' }));
    expect(issuer.count(issuer.discoveryPath)).toBe(0);
  });

  it('keeps at most maxIssuers issuers, dropping the oldest', async () => {
    const a = await issuerFor({ algs: ['EdDSA'] });
    const b = await issuerFor({ algs: ['EdDSA'] });
    const c = await issuerFor({ algs: ['EdDSA'] });
    const ca = [a.ca, b.ca, c.ca].join('');
    const clock = manualClock();
    const keys = createIssuerKeys({ fetchJson, clock, ca, maxIssuers: 2 });
    const ask = (i: OidcIssuer) =>
      keys.keyFor({ issuer: i.issuer, jwks: null }, { kid: i.keys[0]!.kid, alg: 'EdDSA' });
    for (const i of [a, b, c, b, c]) expect(await ask(i)).not.toBeNull();
    expect([a, b, c].map((i) => i.count(i.jwksPath))).toEqual([1, 1, 1]);
    expect(await ask(a)).not.toBeNull();
    expect([a, b, c].map((i) => i.count(i.jwksPath))).toEqual([2, 1, 1]);
  });
});

describe('createIssuerKeys: pinned keys', () => {
  it('never fetches, and parses one document once', async () => {
    const issuer = await issuerFor();
    let fetches = 0;
    const keys = createIssuerKeys({
      fetchJson: () => {
        fetches++;
        return Promise.reject(new Error('no fetch'));
      },
      clock: manualClock(),
    });
    const jwks = { keys: issuer.keys.map((k) => k.publicJwk) };
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const token = await issuer.mint({}, { alg });
      const first = await keys.keyFor({ issuer: issuer.issuer, jwks }, headerOf(token));
      expect(verifies(token, first!, alg)).toBe(true);
      // A copy of the same document (as a fresh store read gives) hits the same parse.
      const copy = JSON.parse(JSON.stringify(jwks));
      expect(await keys.keyFor({ issuer: issuer.issuer, jwks: copy }, headerOf(token))).toBe(first);
    }
    expect(
      await keys.keyFor({ issuer: issuer.issuer, jwks }, { kid: 'gone', alg: 'RS256' }),
    ).toBeNull();
    expect(fetches).toBe(0);
    expect(issuer.count(issuer.discoveryPath) + issuer.count(issuer.jwksPath)).toBe(0);
  });

  it('is unavailable for a pinned document that does not parse, or holds a private key', async () => {
    const keys = createIssuerKeys({
      fetchJson: () => Promise.reject(new Error('no fetch')),
      clock: manualClock(),
    });
    const { privateKey } = generateKeyPairSync('ed25519');
    const leaked = { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'k' }] };
    for (const jwks of [{ keys: [] }, leaked, { nope: true }]) {
      const error = await unavailable(
        keys.keyFor({ issuer: 'https://i.example', jwks }, { alg: 'EdDSA' }),
      );
      expect(error.message).not.toContain((leaked.keys[0] as { d?: string }).d!);
    }
  });
});
