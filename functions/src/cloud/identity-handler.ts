/**
 * The Cloud Function's request handler, kept apart from the trigger so it can be tested
 * without it. It builds the service once per instance (at cold start, through `onInit`, so a
 * bad bridge key set fails the instance loudly) and adapts Express's request to the HTTP core.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createApp, type App } from '../app.js';
import { pathOf, sendInternalError, sendResponse } from '../adapters/node-http.js';
import { loadConfig, type Env } from '../config/config.js';
import type { Logger } from '../ports/logger.js';

/** What Cloud Functions hands the handler: node:http objects; `rawBody` is set by the framework. */
export type CloudRequest = IncomingMessage & { rawBody?: Buffer };

export interface CloudService {
  /** Builds the service (idempotent); run at cold start. */
  init(): Promise<App>;
  /** The `onRequest` handler. */
  handle(req: CloudRequest, res: ServerResponse): Promise<void>;
}

/**
 * The service as a Cloud Function. `secrets` reads the Secret Manager secrets declared by the
 * trigger (`defineSecret`), once at cold start; they override same-named variables of `env`.
 */
export function cloudService(options: {
  env: Env;
  secrets: () => Env;
  logger: Logger;
}): CloudService {
  let app: Promise<App> | undefined;
  const init = (): Promise<App> => {
    app ??= (async () => {
      const config = loadConfig({ ...options.env, ...options.secrets() }, { store: 'firestore' });
      return createApp({ config, logger: options.logger });
    })();
    return app;
  };
  return {
    init,
    async handle(req, res) {
      try {
        const { handler } = await init();
        const response = await handler({
          method: req.method ?? 'GET',
          path: pathOf(req.url),
          headers: req.headersDistinct,
          body: req.rawBody ?? Buffer.alloc(0),
        });
        sendResponse(res, response);
      } catch (error) {
        sendInternalError(res, options.logger, error);
      }
    },
  };
}
