/** The local logger: one JSON object per line on stdout (info) or stderr (warn, error). */
import type { LogFields, Logger } from '../ports/logger.js';

export function jsonLogger(
  write: (stream: 'stdout' | 'stderr', line: string) => void = (stream, line) =>
    process[stream].write(line),
): Logger {
  const emit = (severity: string, message: string, fields: LogFields = {}) => {
    const stream = severity === 'INFO' ? 'stdout' : 'stderr';
    write(
      stream,
      `${JSON.stringify({ severity, message, time: new Date().toISOString(), ...fields })}\n`,
    );
  };
  return {
    info: (m, f) => emit('INFO', m, f),
    warn: (m, f) => emit('WARNING', m, f),
    error: (m, f) => emit('ERROR', m, f),
  };
}
