/**
 * Workload federation, managed by the bridge: the issuers whose tokens are trusted and the
 * roles that map a token of such an issuer to a root run of one agent, with a scope and a
 * life. `/auth/exchange` (core/exchange.ts) reads them.
 *
 * Safe defaults:
 * - An issuer's keys are pinned inline or discovered over HTTPS only (plain http only for a
 *   loopback host); the service's own issuer is never trusted (a run token must not become a
 *   fresh identity that escapes its tree).
 * - A role binds at least one claim: an issuer such as GitHub Actions signs tokens for every
 *   repository there is, and the audience is the workload's to choose. `iss`, `aud` and the
 *   time claims are checked on their own, never as bound claims.
 * - A role's scope is a run scope; its ttl is within `runs.max_ttl_seconds` (and capped by it
 *   again at each exchange).
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import {
  ROLE_PATTERN,
  type issuersPutRequest,
  type rolesPutRequest,
} from '@agentpack-identity/protocol';
import { rfc3339 } from '../ports/clock.js';
import type { IssuerDoc, RoleDoc } from '../ports/store.js';
import { actorOf } from './audit.js';
import type { CoreDeps } from './deps.js';
import { ApiError } from './errors.js';
import { fetchableUrl } from './fetchable-url.js';
import { parseVerificationKeys } from './issuer-keys.js';
import { list, querySource } from './lists.js';
import type { Principal } from './principal.js';
import { checkRunScope } from './spawn.js';
import { readSetting } from './settings.js';

/** An issuer as the API shows it. */
export interface IssuerView {
  issuer: string;
  /** The pinned keys, or null when they are discovered. */
  jwks: { keys: Record<string, unknown>[] } | null;
  discovery: boolean;
  created_at: string;
  updated_at: string;
}

/** A role as the API shows it. */
export type RoleView = Omit<RoleDoc, never>;

/** Claims checked on their own by the exchange: never bound. */
const RESERVED_CLAIMS = new Set(['iss', 'aud', 'exp', 'nbf', 'iat']);

/** The store id of an issuer: the SHA-256 (hex) of its identifier. */
export function issuerDocId(issuer: string): string {
  return createHash('sha256').update(issuer, 'utf8').digest('hex');
}

function issuerView(doc: IssuerDoc): IssuerView {
  return {
    issuer: doc.issuer,
    jwks: doc.jwks === null ? null : { keys: doc.jwks.keys.map((k) => ({ ...k })) },
    discovery: doc.jwks === null,
    created_at: doc.created_at,
    updated_at: doc.updated_at,
  };
}

function roleView(doc: RoleDoc): RoleView {
  return {
    role: doc.role,
    issuer: doc.issuer,
    audiences: [...doc.audiences],
    bound_claims: Object.fromEntries(
      Object.entries(doc.bound_claims).map(([k, v]) => [k, typeof v === 'string' ? v : [...v]]),
    ),
    agent_id: doc.agent_id,
    scope: [...doc.scope],
    ttl_seconds: doc.ttl_seconds,
    created_at: doc.created_at,
    updated_at: doc.updated_at,
  };
}

/**
 * An issuer whose keys are discovered must be a URL the service may fetch from (one rule,
 * core/fetchable-url.ts: https, or plain http to a loopback host; never link-local or a
 * metadata server), with no query or fragment.
 */
function checkDiscoverable(issuer: string): void {
  const url = fetchableUrl(issuer);
  if (url === null) {
    throw new ApiError(
      'invalid_argument',
      'issuer: keys are discovered over https only (plain http only for a loopback host, never a link-local or metadata address); pin jwks otherwise',
      { field: 'issuer' },
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ApiError('invalid_argument', 'issuer: must not have a query or a fragment', {
      field: 'issuer',
    });
  }
}

/** The members of a public JWK kept when it is pinned: nothing else is stored or answered. */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use'] as const;

/** A pinned JWK reduced to its public members (strings), and `key_ops` (a list of strings). */
function publicMembers(jwk: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of PUBLIC_MEMBERS) {
    if (typeof jwk[name] === 'string') out[name] = jwk[name];
  }
  const ops = jwk['key_ops'];
  if (Array.isArray(ops) && ops.every((op) => typeof op === 'string')) out['key_ops'] = [...ops];
  return out;
}

/**
 * Issuers that sign tokens for everyone (every GitHub repository, every Google account), and
 * the claims of which a role must fix the tenant: a bound value whose fixed part (before any
 * `*`) passes the check.
 */
const MULTI_TENANT: readonly {
  issuer: RegExp;
  what: string;
  claims: Readonly<Record<string, (prefix: string, value: string) => boolean>>;
}[] = [
  {
    issuer: /^https:\/\/token\.actions\.githubusercontent\.com(\/[^/]+)?$/,
    what: 'GitHub Actions signs tokens for every repository: bind repository_owner, repository_owner_id, repository_id, or a repository, sub or job_workflow_ref with a fixed owner (e.g. sub: "repo:ORG/*")',
    claims: {
      repository_owner: (prefix, value) => prefix === value,
      repository_owner_id: (prefix, value) => prefix === value,
      repository_id: (prefix, value) => prefix === value,
      repository: (prefix) => /^[^/]+\//.test(prefix),
      job_workflow_ref: (prefix) => /^[^/]+\//.test(prefix),
      sub: (prefix) => /^repo:[^/:]+\//.test(prefix),
    },
  },
  {
    issuer: /^https:\/\/accounts\.google\.com$/,
    what: 'Google signs identity tokens for every account: bind sub, email or azp exactly (no *)',
    claims: {
      sub: (prefix, value) => prefix === value,
      email: (prefix, value) => prefix === value,
      azp: (prefix, value) => prefix === value,
    },
  },
];

/** Refuses a role on a multi-tenant issuer that does not pin the tenant. */
function checkTenantBound(
  issuer: string,
  bound: Readonly<Record<string, string | readonly string[]>>,
): void {
  const rule = MULTI_TENANT.find((r) => r.issuer.test(issuer));
  if (rule === undefined) return;
  const pinned = Object.entries(bound).some(([name, values]) => {
    const check = Object.hasOwn(rule.claims, name) ? rule.claims[name] : undefined;
    if (check === undefined) return false;
    const list = typeof values === 'string' ? [values] : values;
    return list.every((v) => check(v.split('*')[0]!, v));
  });
  if (!pinned) {
    throw new ApiError('invalid_argument', `bound_claims: ${rule.what}`, {
      field: 'bound_claims',
    });
  }
}

/** `/issuers/put`: trusts an issuer, with pinned keys or by discovery; replaces an earlier put. */
export async function putIssuer(
  deps: CoreDeps & { issuerUrl: string },
  principal: Principal,
  input: z.output<typeof issuersPutRequest>,
): Promise<IssuerView> {
  if (input.issuer === deps.issuerUrl) {
    throw new ApiError(
      'invalid_argument',
      "issuer: this service's own issuer cannot be trusted for exchange (a run token is never a credential for a new run)",
      { field: 'issuer' },
    );
  }
  if (input.jwks === undefined) checkDiscoverable(input.issuer);
  // Refuses private keys and a set with none usable, naming the key.
  else parseVerificationKeys(input.jwks, 'jwks');
  const jwks = input.jwks === undefined ? null : { keys: input.jwks.keys.map(publicMembers) };
  const id = issuerDocId(input.issuer);
  return deps.store.transact(async (tx) => {
    const at = rfc3339(deps.clock.now());
    const existing = await tx.get('issuers', id);
    const doc: IssuerDoc = {
      issuer: input.issuer,
      jwks,
      created_at: existing?.created_at ?? at,
      updated_at: at,
    };
    tx.set('issuers', id, doc);
    tx.audit({
      category: 'auth',
      action: 'issuer.put',
      actor: actorOf(principal),
      target: { issuer: input.issuer },
      at,
      details: {
        keys: jwks === null ? 'discovered' : `${jwks.keys.length} pinned`,
        replaced: existing !== null,
      },
    });
    return issuerView(doc);
  });
}

/** `/issuers/delete`: refused while a role still names the issuer. */
export async function deleteIssuer(
  deps: CoreDeps,
  principal: Principal,
  issuer: string,
): Promise<{ issuer: string; deleted: true }> {
  const id = issuerDocId(issuer);
  return deps.store.transact(async (tx) => {
    const existing = await tx.get('issuers', id);
    if (existing === null) throw new ApiError('not_found', 'no such issuer');
    const [role] = await tx.find('roles', 'issuer', issuer, 1);
    if (role !== undefined) {
      throw new ApiError(
        'failed_precondition',
        'a role still trusts this issuer: delete or change the role first',
        { role: role.doc.role },
      );
    }
    tx.delete('issuers', id);
    tx.audit({
      category: 'auth',
      action: 'issuer.delete',
      actor: actorOf(principal),
      target: { issuer },
      at: rfc3339(deps.clock.now()),
    });
    return { issuer, deleted: true as const };
  });
}

/** `/roles/put`: creates or replaces a role. */
export async function putRole(
  deps: CoreDeps,
  principal: Principal,
  input: z.output<typeof rolesPutRequest>,
): Promise<RoleView> {
  for (const name of Object.keys(input.bound_claims)) {
    if (RESERVED_CLAIMS.has(name)) {
      throw new ApiError(
        'invalid_argument',
        `bound_claims: ${name} is checked by the exchange itself (issuer, audiences, time) and cannot be bound`,
        { field: 'bound_claims' },
      );
    }
  }
  checkTenantBound(input.issuer, input.bound_claims);
  const scope = checkRunScope(input.scope, null);
  return deps.store.transact(async (tx) => {
    const maxTtl = await readSetting(tx, 'runs.max_ttl_seconds');
    if (input.ttl_seconds > maxTtl) {
      throw new ApiError('invalid_argument', 'ttl_seconds is above runs.max_ttl_seconds', {
        field: 'ttl_seconds',
        max_ttl_seconds: maxTtl,
      });
    }
    if ((await tx.get('issuers', issuerDocId(input.issuer))) === null) {
      throw new ApiError(
        'failed_precondition',
        'the issuer is not trusted: put it with /issuers/put first',
        { field: 'issuer' },
      );
    }
    const agent = await tx.get('agents', input.agent_id);
    if (agent === null)
      throw new ApiError('not_found', 'no such agent', { agent_id: input.agent_id });
    if ((agent.retired_at ?? null) !== null) {
      throw new ApiError('failed_precondition', 'the agent is retired', {
        agent_id: input.agent_id,
      });
    }
    const at = rfc3339(deps.clock.now());
    const existing = await tx.get('roles', input.role);
    const doc: RoleDoc = {
      role: input.role,
      issuer: input.issuer,
      audiences: [...new Set(input.audiences)],
      bound_claims: input.bound_claims,
      agent_id: input.agent_id,
      scope,
      ttl_seconds: input.ttl_seconds,
      created_at: existing?.created_at ?? at,
      updated_at: at,
    };
    // Putting a role again unchanged changes nothing (and so ends none of its runs): a
    // configuration applied twice is not a change.
    if (existing !== null && sameRole(existing, doc)) return roleView(existing);
    tx.set('roles', input.role, doc);
    tx.audit({
      category: 'auth',
      action: 'role.put',
      actor: actorOf(principal),
      target: { role: input.role, agent_id: input.agent_id, issuer: input.issuer },
      at,
      details: {
        scope: scope.join(' '),
        ttl_seconds: input.ttl_seconds,
        bound_claims: Object.keys(input.bound_claims).sort().join(' '),
        replaced: existing !== null,
      },
    });
    return roleView(doc);
  });
}

/** True when two roles say the same, whatever their times. */
function sameRole(a: RoleDoc, b: RoleDoc): boolean {
  const meaning = (r: RoleDoc) =>
    JSON.stringify([r.issuer, r.audiences, r.bound_claims, r.agent_id, r.scope, r.ttl_seconds]);
  return meaning(a) === meaning(b);
}

/** `/roles/get`. */
export async function getRole(deps: CoreDeps, role: string): Promise<RoleView> {
  const doc = await deps.store.get('roles', role);
  if (doc === null) throw new ApiError('not_found', 'no such role', { role });
  return roleView(doc);
}

/** `/roles/delete`: runs already made under the role keep their (short) lives. */
export async function deleteRole(
  deps: CoreDeps,
  principal: Principal,
  role: string,
): Promise<{ role: string; deleted: true }> {
  return deps.store.transact(async (tx) => {
    const existing = await tx.get('roles', role);
    if (existing === null) throw new ApiError('not_found', 'no such role', { role });
    tx.delete('roles', role);
    tx.audit({
      category: 'auth',
      action: 'role.delete',
      actor: actorOf(principal),
      target: { role, agent_id: existing.agent_id, issuer: existing.issuer },
      at: rfc3339(deps.clock.now()),
    });
    return { role, deleted: true as const };
  });
}

/** `/issuers/list`: by issuer identifier. */
export async function listIssuers(
  deps: CoreDeps,
  args: { cursor?: string | undefined; limit?: number | undefined },
): Promise<{ issuers: IssuerView[]; next_cursor: string | null }> {
  const { items, next_cursor } = await list(
    'issuers/list',
    {},
    args,
    [querySource(deps.store, 'issuers', 'issuer')],
    (f) => issuerView(f.doc),
    (key) => /^[\x21-\x7e]{1,256}$/.test(key),
  );
  return { issuers: items, next_cursor };
}

/** `/roles/list`: by role name. */
export async function listRoles(
  deps: CoreDeps,
  args: { cursor?: string | undefined; limit?: number | undefined },
): Promise<{ roles: RoleView[]; next_cursor: string | null }> {
  const { items, next_cursor } = await list(
    'roles/list',
    {},
    args,
    [querySource(deps.store, 'roles', 'role')],
    (f) => roleView(f.doc),
    (key) => ROLE_PATTERN.test(key),
  );
  return { roles: items, next_cursor };
}
