/**
 * The revoke commands (`keys revoke`, `delegations revoke`, `runs revoke`) are one shape: the
 * id as the only positional, checked with the route's request schema, sent as the bridge key or
 * a device key, the answer printed.
 */
import { AGENT_VALUES, call, connect, REFUSED_CREDENTIALS } from './connection.js';
import type { CliIo } from './io.js';
import { parseOptions } from './options.js';
import { OUTPUT_FLAGS, outputMode, printObject } from './table.js';
import { checked, type Schema } from './validate.js';

export function revokeCommand<T extends Record<string, unknown>>(spec: {
  path: string;
  /** The positional's name in help and errors, e.g. `KEY_ID`. */
  positional: string;
  /** The body field the id goes in, e.g. `key_id`. */
  field: string;
  schema: Schema<T>;
}): (args: readonly string[], io: CliIo) => Promise<number> {
  return async (args, io) => {
    const opts = parseOptions(args, {
      values: AGENT_VALUES,
      flags: OUTPUT_FLAGS,
      positionals: [spec.positional],
      refused: REFUSED_CREDENTIALS,
    });
    const body = checked(spec.schema, { [spec.field]: opts._[0] }, spec.positional);
    const mode = outputMode(opts, io);
    const conn = connect(opts, io, 'either');
    printObject(io, mode, await call(conn, spec.path, body, io));
    return 0;
  };
}
