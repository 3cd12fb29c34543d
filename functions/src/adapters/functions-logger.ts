/** The Cloud Functions logger: structured entries in Cloud Logging. */
import * as logger from 'firebase-functions/logger';
import type { Logger } from '../ports/logger.js';

export const functionsLogger: Logger = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};
