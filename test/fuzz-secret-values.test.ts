/**
 * A value /secrets/put accepts must read back exactly (a secret value is a UTF-8 string), over
 * real HTTP against the local server: property-based, fixed seed.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueKey, must } from './helpers/fuzz-calls.js';
import { SEED } from './helpers/fuzz-values.js';
import { startTestService, type TestService } from './helpers/service.js';

describe('secret values round-trip', () => {
  let svc: TestService;
  let key: string;
  beforeAll(async () => {
    svc = await startTestService();
    must(
      await svc.post('/agents/create', { agent_id: 'rt-agent', display_name: 'RT' }, svc.bridge),
      201,
      'create',
    );
    key = (await issueKey(svc, 'rt-agent'))[0];
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('reads back exactly what /secrets/put accepted, or refuses it', async () => {
    const value = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc
        .tuple(
          fc.string({ maxLength: 5 }),
          fc.integer({ min: 0xd800, max: 0xdfff }),
          fc.string({ maxLength: 5 }),
        )
        .map(([a, unit, b]) => `${a}${String.fromCharCode(unit)}${b}`),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(value, async (v) => {
        const name = `rt_${n++}`;
        const put = await svc.post('/secrets/put', { name, value: v }, svc.device(key));
        expect(put.status, put.text).toBeLessThan(500);
        if (put.status !== 200) return; // a refusal is fine; a silent change is not
        const got = await svc.post('/secrets/get', { name }, svc.device(key));
        expect(got.status).toBe(200);
        expect(
          got.body.value,
          `put ${JSON.stringify(v)} answered 200, get returned ${JSON.stringify(got.body.value)}`,
        ).toBe(v);
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});
