/**
 * The service over real HTTP for API tests: a temporary data dir, the real SQLite store, the
 * real node:http server on a free loopback port, a capturing logger and an injectable clock.
 */
import type { Server } from 'node:http';
import { createApp, type App } from '../../functions/src/app.js';
import type { Handler } from '../../functions/src/http/handler.js';
import type { TokenSigner } from '../../functions/src/ports/token-signer.js';
import { loadConfig } from '../../functions/src/config/config.js';
import { startServer } from '../../functions/src/local/server.js';
import type { Clock } from '../../functions/src/ports/clock.js';
import type { Keyring } from '../../functions/src/ports/keyring.js';
import type { Store } from '../../functions/src/ports/store.js';
import type { Digester } from '../../functions/src/core/digest.js';
import { capturingLogger } from './logs.js';
import { tempDir } from './temp-dir.js';
import { TEST_JWKS } from './tokens.js';

export const BRIDGE_KEY = 'test-bridge-key-0123456789abcdefghijklmnop';
export const BRIDGE_KEY_2 = 'test-bridge-key-second-0123456789abcdefgh';

export interface ApiResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface TestService {
  url: string;
  store: Store;
  /** The service's digest of presented secrets (device keys, codes): their store ids. */
  digest: Digester;
  logs: string[];
  /** Every response body text seen, for leak checks. */
  responses: string[];
  dataDir: string;
  /** POSTs JSON with the given headers. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<ApiResult>;
  /** Any request, raw. */
  request(path: string, init: RequestInit): Promise<ApiResult>;
  bridge: Record<string, string>;
  device(key: string): Record<string, string>;
  close(): Promise<void>;
}

export async function startTestService(
  options: {
    clock?: Clock;
    store?: Store;
    keyring?: Keyring;
    signer?: TokenSigner;
    /** PEM roots the service trusts when it fetches an issuer's keys (a local test issuer). */
    issuerCa?: string;
    /** More environment (e.g. `AGENTPACK_ISSUER_URL`). */
    env?: Record<string, string>;
  } = {},
): Promise<TestService> {
  const tmp = tempDir();
  const { logger, lines } = capturingLogger();
  // Listening first: the issuer URL defaults to the server's own address, as with npm start.
  let handler: Handler = async () => ({ status: 503, headers: {}, body: {} });
  const { server, url } = await startServer((req) => handler(req), logger, {
    port: 0,
    host: '127.0.0.1',
  });
  let app: App;
  try {
    const config = loadConfig(
      {
        AGENTPACK_DATA_DIR: tmp.dir,
        AGENTPACK_BRIDGE_KEYS: `${BRIDGE_KEY},${BRIDGE_KEY_2}`,
        AGENTPACK_CAPABILITY_KEYS: TEST_JWKS,
        ...options.env,
      },
      { store: 'sqlite', issuerUrl: url },
    );
    app = await createApp({
      config,
      logger,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.store === undefined ? {} : { store: options.store }),
      ...(options.keyring === undefined ? {} : { keyring: options.keyring }),
      ...(options.signer === undefined ? {} : { signer: options.signer }),
      ...(options.issuerCa === undefined ? {} : { issuerCa: options.issuerCa }),
    });
  } catch (error) {
    await closeServer(server);
    tmp.remove();
    throw error;
  }
  handler = app.handler;
  const responses: string[] = [];
  const request = async (path: string, init: RequestInit): Promise<ApiResult> => {
    const res = await fetch(url + path, init);
    const text = await res.text();
    responses.push(text);
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body, text };
  };
  return {
    url,
    store: app.store,
    digest: app.digest,
    logs: lines,
    responses,
    dataDir: tmp.dir,
    request,
    post: (path, body, headers = {}) =>
      request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    bridge: { 'x-agentpack-key': BRIDGE_KEY },
    device: (key) => ({ 'x-agentpack-device-key': key }),
    async close() {
      await closeServer(server);
      await app.close();
      tmp.remove();
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
