import { jsonLogger } from '../../functions/src/adapters/json-logger.js';
import type { Logger } from '../../functions/src/ports/logger.js';

/** A real JSON-lines logger whose lines are kept for assertions. */
export function capturingLogger(): {
  logger: Logger;
  lines: string[];
  entries(): Record<string, unknown>[];
} {
  const lines: string[] = [];
  const logger = jsonLogger((_stream, line) => {
    lines.push(line);
  });
  return {
    logger,
    lines,
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
