/**
 * The broker in process: it listens on 127.0.0.1 only, gives the environment the contract
 * names, and zeroes the real keys when it stops.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_PROVIDERS } from '../packages/cli/src/broker/providers.js';
import { startBroker } from '../packages/cli/src/broker/server.js';

describe('startBroker', () => {
  it('listens on loopback, names its port in the environment, and zeroes the keys on close', async () => {
    const key = Buffer.from('sk-zero-me-0123456789');
    const logs: string[] = [];
    const broker = await startBroker([{ provider: BUILTIN_PROVIDERS['openai']!, key }], {
      maxRequests: 1,
      log: (line) => logs.push(line),
    });
    expect(broker.env()).toEqual({
      OPENAI_BASE_URL: `http://127.0.0.1:${broker.port}/openai/v1`,
      OPENAI_API_KEY: broker.placeholder,
    });
    const refused = await fetch(`http://127.0.0.1:${broker.port}/openai/v1/models`, {
      headers: { authorization: 'Bearer wrong' },
    });
    expect(refused.status).toBe(401);
    const capped = await fetch(`http://127.0.0.1:${broker.port}/openai/v1/models`);
    expect(capped.status).toBe(429);
    expect(logs).toEqual([
      expect.stringMatching(/^broker: openai GET \/openai\/v1\/models 401 \d+B \d+ms$/),
      expect.stringMatching(/^broker: openai GET \/openai\/v1\/models 429 \d+B \d+ms$/),
    ]);
    await broker.close();
    expect(key.every((b) => b === 0)).toBe(true);
  });
});
