/** Runs over HTTP for tests: spawn with a fresh key, and call as a run (signed by its key). */
import { expect } from 'vitest';
import { generateDeviceKeys, signRequest } from '@agentpack-identity/protocol';
import type { Clock } from '../../functions/src/ports/clock.js';
import type { ApiResult, TestService } from './service.js';

export interface Run {
  run_id: string;
  seed: Uint8Array;
  body: any;
}

/** A fresh Ed25519 key for one run: its public half (base64url) and its seed. */
export function newRunKey(): { pub: string; seed: Uint8Array } {
  const k = generateDeviceKeys().signing;
  return { pub: Buffer.from(k.publicKey).toString('base64url'), seed: k.privateKey };
}

export interface RunClient {
  /** A request as the run: `x-agentpack-run` plus a signature by the run's key. */
  asRun(
    run: Run,
    path: string,
    body: object,
    opts?: { seed?: Uint8Array; at?: number; sign?: boolean },
  ): Promise<ApiResult>;
  /** Spawns a run (201 expected) with the caller's headers, or as a child of `by`. */
  spawn(by: Record<string, string> | Run, body?: Record<string, unknown>): Promise<Run>;
  /** The public well-known document of a run. */
  identity(runId: string): Promise<ApiResult>;
}

export function runClient(svc: TestService, clock: Clock): RunClient {
  const asRun: RunClient['asRun'] = (run, path, body, opts = {}) => {
    const raw = Buffer.from(JSON.stringify(body));
    const signed =
      opts.sign === false
        ? {}
        : signRequest({
            method: 'POST',
            path,
            body: raw,
            signingSeed: opts.seed ?? run.seed,
            nowMs: opts.at ?? clock.now(),
          });
    return svc.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-agentpack-run': run.run_id, ...signed },
      body: raw,
    });
  };
  return {
    asRun,
    async spawn(by, body = {}) {
      const key = newRunKey();
      const req = {
        task: 'summarise inbox',
        scope: ['secrets/get:openai_key', 'runs/spawn'],
        ttl_seconds: 300,
        public_key: key.pub,
        ...body,
      };
      const res =
        'run_id' in by
          ? await asRun(by as Run, '/runs/spawn', req)
          : await svc.post('/runs/spawn', req, by as Record<string, string>);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return { run_id: res.body.run_id, seed: key.seed, body: res.body };
    },
    identity: (runId) =>
      svc.request(`/.well-known/agentpack-agent-identity/${runId}`, { method: 'GET' }),
  };
}
