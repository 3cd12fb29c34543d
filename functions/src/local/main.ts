/**
 * `npm start`: the service on http://127.0.0.1:8787 over the embedded SQLite store in
 * `./.data`. Without `AGENTPACK_BRIDGE_KEYS` it uses (and on first start generates) a dev
 * bridge key in the data dir and prints where it is, never the key. It prunes what has expired
 * at start and every ten minutes (local/pruning.ts).
 */
import { createApp } from '../app.js';
import { jsonLogger } from '../adapters/json-logger.js';
import { loadConfig } from '../config/config.js';
import { systemClock } from '../ports/clock.js';
import { ensureDevBridgeKey, ensureDevSigningKey } from './dev-keys.js';
import { startPruning } from './pruning.js';
import { startServer } from './server.js';
import type { Handler } from '../http/handler.js';
import type { HttpResponse } from '../ports/http.js';

const NOT_READY: HttpResponse = {
  status: 503,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  body: { error: { code: 'unavailable', message: 'the service is starting' } },
};

async function main(): Promise<void> {
  const env = process.env;
  const logger = jsonLogger();
  const dataDir = env['AGENTPACK_DATA_DIR'] ?? './.data';
  const devKey = env['AGENTPACK_BRIDGE_KEYS'] === undefined ? ensureDevBridgeKey(dataDir) : null;
  const devSigning =
    env['AGENTPACK_CAPABILITY_KEYS'] === undefined ? ensureDevSigningKey(dataDir) : null;
  const port = Number(env['PORT'] ?? 8787);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error('PORT must be a port number');
  // The server listens first so that the issuer URL (run tokens' `iss`) can default to the
  // address it is reached at; nothing is answered before the line below is printed, and a
  // request that came earlier gets a 503.
  let handler: Handler = async () => NOT_READY;
  const { server, url } = await startServer((req) => handler(req), logger, {
    port,
    host: env['HOST'] ?? '127.0.0.1',
  });
  const config = loadConfig(env, {
    store: 'sqlite',
    issuerUrl: url,
    ...(devKey === null ? {} : { bridgeKeys: devKey.key }),
    ...(devSigning === null ? {} : { capabilityKeys: devSigning.jwks }),
  });
  const app = await createApp({ config, logger });
  handler = app.handler;
  logger.info('server.started', { url, store: app.store.kind, data_dir: config.dataDir });
  // The app's clock: createApp was given none, so it is the system clock too.
  const pruner = startPruning({ store: app.store, clock: systemClock }, logger);
  const lines = [
    `agentpack-identity listening on ${url} (store: ${app.store.kind}, data: ${config.dataDir})`,
    `run tokens are issued as ${config.issuerUrl} (OIDC discovery: ${config.issuerUrl}/.well-known/openid-configuration)`,
  ];
  if (devKey !== null) {
    lines.push(
      `dev bridge key ${devKey.created ? 'generated into' : 'read from'} ${devKey.file} (mode 0600)`,
      'try:',
      `  curl -s ${url}/agents/create -H 'content-type: application/json' \\`,
      `    -H "x-agentpack-key: $(cat ${devKey.file})" -d '{"display_name":"my first agent"}'`,
    );
  }
  if (devSigning !== null) {
    lines.push(
      `dev capability signing key ${devSigning.created ? 'generated into' : 'read from'} ${devSigning.file} (mode 0600); mint a token with:`,
      `  npx agentpack-identity token mint --key ${devSigning.file} --sub AGENT --scope secrets/get`,
    );
  }
  // Handlers first: whoever reads the line below may signal at once, and a signal with no
  // handler yet would kill the process without closing the store.
  const stop = (signal: string) => {
    logger.info('server.stopping', { signal });
    server.close(() => {
      pruner
        .stop()
        .then(() => app.close())
        .then(
          () => process.exit(0),
          () => process.exit(1),
        );
    });
    server.closeAllConnections();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `agentpack-identity: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
