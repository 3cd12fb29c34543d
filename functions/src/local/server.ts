/** The local transport: a plain node:http server in front of the HTTP core. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readRequest, sendInternalError, sendResponse } from '../adapters/node-http.js';
import type { Handler } from '../http/handler.js';
import type { Logger } from '../ports/logger.js';

/** Starts serving `handler`; resolves once listening, with the bound port. */
export async function startServer(
  handler: Handler,
  logger: Logger,
  options: { port: number; host: string },
): Promise<{ server: Server; port: number; url: string }> {
  const server = createServer((req, res) => {
    readRequest(req)
      .then(handler)
      .then((response) => sendResponse(res, response))
      .catch((error: unknown) => sendInternalError(res, logger, error));
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { server, port, url: `http://${host}:${port}` };
}
