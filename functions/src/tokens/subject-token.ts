/**
 * Subject tokens of `/auth/exchange`: JWTs that a trusted issuer (a Kubernetes cluster, GitHub
 * Actions, Google) signed for a workload. Pure and synchronous, node:crypto only; nothing here
 * throws on any token string: a refusal is a value with its reason, and no message ever repeats
 * the token or a claim value.
 *
 * The steps, in the order `/auth/exchange` runs them: {@link parseSubjectToken} (shape and
 * algorithm), then the role and issuer (the core's), {@link verifySubjectSignature} with the
 * issuer's key, {@link checkSubjectClaims} (time, audience, bound claims).
 */
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import {
  decodeBase64Url,
  isJsonObject,
  RUN_TOKEN_TYP,
  TOKEN_TYP,
  VISIBLE_TEXT,
} from '@agentpack-identity/protocol';
import { parseJsonSegment } from './verify.js';

/** The algorithms a subject token may be signed with. `none`, HMAC and the rest are refused. */
export const SUBJECT_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export type SubjectAlg = (typeof SUBJECT_ALGS)[number];

/** Why an exchange is refused: `details.reason` of its 401. */
export type ExchangeRefusal =
  | 'malformed'
  | 'unsupported_alg'
  | 'unknown_role'
  | 'untrusted_issuer'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  | 'claim_mismatch'
  | 'agent_disabled';

export interface Refused {
  ok: false;
  reason: ExchangeRefusal;
  message: string;
  /** The bound claim that did not match (a name, never a value). */
  claim?: string;
}

export interface ParsedSubjectToken {
  ok: true;
  alg: SubjectAlg;
  kid: string | undefined;
  claims: Record<string, unknown>;
  signingInput: Buffer;
  signature: Buffer;
}

/** Tolerated clock difference for `exp`, `nbf` and `iat`. */
export const SUBJECT_SKEW_SECONDS = 30;

/** The longest `sub` accepted (it goes into the audit). */
const MAX_SUBJECT_LENGTH = 256;

/** A claim value longer than this never matches a bound claim (keeps matching cheap). */
const MAX_MATCHED_LENGTH = 1024;

function refused(reason: ExchangeRefusal, message: string, claim?: string): Refused {
  return { ok: false, reason, message, ...(claim === undefined ? {} : { claim }) };
}

function jsonSegment(segment: string): Record<string, unknown> | null {
  const bytes = decodeBase64Url(segment);
  if (bytes === null || bytes.length === 0) return null;
  const value = parseJsonSegment(bytes);
  return isJsonObject(value) ? value : null;
}

/**
 * Reads a compact JWS: three canonical base64url segments, a JSON header with an accepted `alg`
 * and no `crit`, a JSON object payload. A token of this service (a run or capability token) is
 * refused: it cannot be exchanged for a new identity.
 */
export function parseSubjectToken(token: string): ParsedSubjectToken | Refused {
  const malformed = (why: string) => refused('malformed', `the subject token ${why}`);
  const parts = token.split('.');
  if (parts.length !== 3) return malformed('is not a compact JWS (three dot-separated parts)');
  const [h, p, s] = parts as [string, string, string];
  const header = jsonSegment(h);
  if (header === null) return malformed('has a header that is not base64url JSON');
  const alg = header['alg'];
  if (typeof alg !== 'string' || !(SUBJECT_ALGS as readonly string[]).includes(alg)) {
    return refused(
      'unsupported_alg',
      `the subject token must be signed with ${SUBJECT_ALGS.join(', ')} (not none, not HMAC)`,
    );
  }
  if ('crit' in header)
    return malformed('has critical header extensions, none of which are supported');
  const kid = header['kid'];
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) {
    return malformed('has a kid that is not a short string');
  }
  const typ = header['typ'];
  if (typ === RUN_TOKEN_TYP || typ === TOKEN_TYP) {
    return malformed('is a token of this service, which cannot be exchanged');
  }
  const claims = jsonSegment(p);
  if (claims === null) return malformed('has a payload that is not a base64url JSON object');
  const signature = decodeBase64Url(s, 1, 1024);
  if (signature === null) return malformed('has a signature that is not canonical base64url');
  const sub = claims['sub'];
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) {
    return malformed(`has no sub of 1 to ${MAX_SUBJECT_LENGTH} characters`);
  }
  // The sub goes into the audit and the store: well-formed Unicode, and nothing that changes
  // how the text around it reads (control, format and separator characters), as every text
  // field of the API.
  if (/\p{Cs}/u.test(sub) || !VISIBLE_TEXT.test(sub)) {
    return malformed('has a sub with control or format characters, or broken Unicode');
  }
  if (typeof claims['iss'] !== 'string') return malformed('has no iss');
  if (typeof claims['exp'] !== 'number' || !Number.isFinite(claims['exp'])) {
    return malformed('has no exp: a token without an end cannot be exchanged');
  }
  return {
    ok: true,
    alg: alg as SubjectAlg,
    kid,
    claims,
    signingInput: Buffer.from(`${h}.${p}`, 'ascii'),
    signature,
  };
}

/** True when `key` (of the kind `alg` needs) verifies the token's signature. */
export function verifySubjectSignature(token: ParsedSubjectToken, key: KeyObject): boolean {
  try {
    switch (token.alg) {
      case 'RS256':
        return (
          key.asymmetricKeyType === 'rsa' &&
          cryptoVerify(
            'sha256',
            token.signingInput,
            { key, padding: constants.RSA_PKCS1_PADDING },
            token.signature,
          )
        );
      case 'ES256':
        return (
          key.asymmetricKeyType === 'ec' &&
          key.asymmetricKeyDetails?.namedCurve === 'prime256v1' &&
          token.signature.length === 64 &&
          cryptoVerify(
            'sha256',
            token.signingInput,
            { key, dsaEncoding: 'ieee-p1363' },
            token.signature,
          )
        );
      case 'EdDSA':
        return (
          key.asymmetricKeyType === 'ed25519' &&
          token.signature.length === 64 &&
          cryptoVerify(null, token.signingInput, key, token.signature)
        );
    }
  } catch {
    return false;
  }
}

/**
 * True when `value` matches `pattern`, where `*` matches any run of characters (none
 * included) and every other character matches itself. Greedy matching with one backtrack
 * point: at worst pattern length × value length steps, both bounded; no regular expression is
 * ever built from operator input.
 */
export function globMatch(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (star !== -1) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** What a role requires of a subject token's claims. */
export interface ClaimRules {
  audiences: readonly string[];
  bound_claims: Readonly<Record<string, string | readonly string[]>>;
}

/**
 * Checks the time claims (with {@link SUBJECT_SKEW_SECONDS} of skew), the audience and every
 * bound claim. Null when all pass.
 */
export function checkSubjectClaims(
  claims: Record<string, unknown>,
  rules: ClaimRules,
  nowMs: number,
): Refused | null {
  const now = nowMs / 1000;
  const exp = claims['exp'] as number;
  if (now - SUBJECT_SKEW_SECONDS >= exp) return refused('expired', 'the subject token has expired');
  for (const name of ['nbf', 'iat'] as const) {
    const value = claims[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      return refused('malformed', `the subject token's ${name} is not a number`);
    }
    if (value > now + SUBJECT_SKEW_SECONDS) {
      return refused('not_yet_valid', `the subject token is not valid yet (${name})`);
    }
  }
  const aud = claims['aud'];
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.some((a) => typeof a === 'string' && rules.audiences.includes(a))) {
    return refused('wrong_audience', "the subject token's aud is not an audience of the role");
  }
  for (const [name, bound] of Object.entries(rules.bound_claims)) {
    const value = Object.hasOwn(claims, name) ? claims[name] : undefined;
    const patterns = typeof bound === 'string' ? [bound] : bound;
    const ok =
      typeof value === 'string' &&
      value.length <= MAX_MATCHED_LENGTH &&
      patterns.some((pattern) => globMatch(pattern, value));
    if (!ok) {
      return refused(
        'claim_mismatch',
        `the subject token's ${name} claim does not match the role`,
        name,
      );
    }
  }
  return null;
}
