/**
 * Property-based fuzzing (fast-check, fixed seeds), over real HTTP against the local server on
 * SQLite, of every route in the route table, body and headers, for each kind of credential
 * (none, bridge, device key, signed enrolled device, capability token, run, device key or token
 * + delegation, garbage, and dead credentials that once worked): never a 5xx, every refusal a
 * JSON error whose code maps to its status by the API's table, a caller kind the route does not
 * accept never succeeds, and a refused request changes no state (every collection and the audit
 * log, compared before and after; the only writes a refusal may make are the ones the contract
 * asks for: the nonce of a correctly signed request, and the audit row of an enrollment
 * fingerprint mismatch).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../functions/src/routes/route.js';
import { ROUTES } from '../functions/src/routes/table.js';
import { bodyPlan, fieldsOf } from './helpers/fuzz-bodies.js';
import { skewClock } from './helpers/fuzz-calls.js';
import {
  errorShapeProblem,
  expectedCallers,
  forbiddenChanges,
  snapshot,
  type Snapshot,
} from './helpers/fuzz-contract.js';
import { ensure, setUpFixture, type Ctx } from './helpers/fuzz-fixture.js';
import {
  CALLER_KIND,
  KINDS,
  buildRequest,
  describeSent,
  headerPlan,
  nonceIdOf,
  type Kind,
  type Sent,
} from './helpers/fuzz-requests.js';
import { FIELD_VALUES, SEED } from './helpers/fuzz-values.js';
import { sendRaw, type RawReply } from './helpers/raw-client.js';
import { BRIDGE_KEY, BRIDGE_KEY_2, startTestService, type TestService } from './helpers/service.js';

/** Checks one reply against the contract; returns the problems found. */
function replyProblems(route: Route, kind: Kind, sent: Sent, reply: RawReply): string[] {
  const problems: string[] = [];
  if (reply.status === 0) return ['no HTTP answer'];
  if (reply.status >= 500) problems.push(`status ${reply.status}: ${reply.text}`);
  const ok = reply.status >= 200 && reply.status < 300;
  const contentType = reply.headers['content-type']?.[0] ?? '';
  if (!contentType.startsWith('application/json')) problems.push(`content-type ${contentType}`);
  if (ok) {
    if (typeof reply.body !== 'object' || reply.body === null || Array.isArray(reply.body)) {
      problems.push('a 2xx whose body is not a JSON object');
    }
    const caller = CALLER_KIND[kind];
    const callers = expectedCallers(route);
    if (callers !== 'none' && (caller === null || !callers.includes(caller))) {
      problems.push(`a ${kind} caller succeeded on ${route.path} (callers: ${callers})`);
    }
    if (sent.method !== route.method)
      problems.push(`${sent.method} succeeded on a ${route.method} route`);
  } else {
    const shape = errorShapeProblem(reply.status, reply.body);
    if (shape !== null) problems.push(`error body: ${shape}: ${reply.text.slice(0, 200)}`);
    if (reply.status === 401 && reply.headers['www-authenticate'] === undefined) {
      problems.push('401 without WWW-Authenticate');
    }
    if (reply.status === 405 && reply.headers['allow'] === undefined)
      problems.push('405 without Allow');
  }
  return problems;
}

/** Runs per route and credential kind: more where the handler does real work. */
function numRuns(route: Route, kind: Kind): number {
  const callers = expectedCallers(route);
  if (callers === 'none') return route.method === 'GET' ? 12 : 40;
  const accepted = CALLER_KIND[kind] !== null && callers.includes(CALLER_KIND[kind]!);
  return accepted ? 60 : kind === 'dead' ? 30 : 20;
}

describe('fuzzing every route, body and headers, for every credential kind', () => {
  const stats = { requests: 0, ok: 0, refused: 0, byStatus: new Map<number, number>() };
  const seenDeviceKeys = new Set<string>();
  const logs: string[] = [];
  const tokens: string[] = [];

  it('covers every route of the table', () => {
    expect(ROUTES.length).toBeGreaterThanOrEqual(21);
    const bodiless = ['/secrets/list', '/settings/list', '/runs/complete'];
    for (const route of ROUTES) {
      if (route.method === 'POST' && !bodiless.includes(route.path)) {
        expect(fieldsOf(route).length, `fields of ${route.path}`).toBeGreaterThan(0);
      }
      for (const field of fieldsOf(route)) {
        // Every field has a plausible generator, so near-valid bodies reach the handlers.
        expect(
          FIELD_VALUES[`${route.path}:${field}`] ?? FIELD_VALUES[field],
          `${route.path} ${field}`,
        ).toBeDefined();
      }
    }
  });

  // One service per route, so each store stays small and a failure stays local.
  describe.each(ROUTES.map((route) => ({ route, path: route.path })))('$path', ({ route }) => {
    let svc: TestService;
    let ctx: Ctx;
    let state: Snapshot | null = null;
    beforeAll(async () => {
      skewClock.skewMs = 0;
      svc = await startTestService({ clock: skewClock });
      ctx = await setUpFixture(svc);
      tokens.push(ctx.tokenA);
    });
    afterAll(async () => {
      logs.push(...(svc?.logs ?? []));
      await svc?.close();
    });

    it.each([...KINDS])('credential: %s', async (kind) => {
      const routeIndex = ROUTES.indexOf(route);
      await fc.assert(
        fc.asyncProperty(headerPlan, bodyPlan(route), async (plan, body) => {
          // The state after the previous run is the state before this one, unless the fixture
          // had to be repaired (or nothing was taken yet).
          if ((await ensure(ctx)) || state === null) state = await snapshot(svc.store);
          const before = state;
          const sent = buildRequest(route, kind, plan, body, ctx);
          const nonceId = sent.correctlySigned
            ? await nonceIdOf(svc.store, svc.digest, sent)
            : undefined;
          const reply = await sendRaw(svc.url, sent);
          stats.requests++;
          stats.byStatus.set(reply.status, (stats.byStatus.get(reply.status) ?? 0) + 1);
          const problems = replyProblems(route, kind, sent, reply);
          const ok = reply.status >= 200 && reply.status < 300;
          state = await snapshot(svc.store);
          if (ok) {
            stats.ok++;
            if (typeof reply.body?.device_key === 'string')
              seenDeviceKeys.add(reply.body.device_key);
          } else {
            stats.refused++;
            const changed = forbiddenChanges(before, state, {
              ...(nonceId === undefined ? {} : { nonceId }),
              enrollMismatch: route.path === '/device/enroll' && reply.status === 409,
            });
            if (changed.length > 0)
              problems.push(`a refused request changed ${changed.join(', ')}`);
          }
          if (problems.length > 0) {
            throw new Error(`${problems.join('\n')}\n--- request ---\n${describeSent(sent)}`);
          }
        }),
        { seed: SEED + routeIndex * 31 + KINDS.indexOf(kind), numRuns: numRuns(route, kind) },
      );
    });
  });

  it('reached the handlers: both successes and refusals of many kinds', () => {
    expect(stats.requests).toBeGreaterThan(1000);
    expect(stats.ok).toBeGreaterThan(100);
    for (const status of [200, 201, 400, 401, 403, 404, 405, 409, 413, 415]) {
      expect(stats.byStatus.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
    }
  });

  it('never wrote a bridge key, device key or token into a log line, nor an error', () => {
    const text = logs.join('\n');
    expect(text.length).toBeGreaterThan(0);
    for (const key of [BRIDGE_KEY, BRIDGE_KEY_2, ...tokens, ...seenDeviceKeys]) {
      expect(text.includes(key)).toBe(false);
    }
    expect(logs.filter((l) => l.includes('"severity":"ERROR"'))).toEqual([]);
  });
});
