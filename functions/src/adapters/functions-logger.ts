/** The Cloud Functions logger: structured entries in Cloud Logging. */
import { logger } from 'firebase-functions';
import type { Logger } from '../ports/logger.js';

export const functionsLogger: Logger = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};
