/**
 * Input checked before it is sent, with the protocol's own request schemas (the ones the
 * service validates with), so a command-line mistake is exit 2 with the schema's reason and no
 * request. Messages name the field, never the value.
 */
import { usage } from './io.js';

/** What the CLI needs of a schema (a zod schema of the protocol package has it). */
export interface Schema<T> {
  safeParse(
    value: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: ReadonlyArray<{ message: string }> } };
}

/** `value` parsed by `schema`, or a usage error with the first reason (`what: reason`). */
export function checked<T>(schema: Schema<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const reason = result.error.issues[0]?.message ?? 'invalid';
  throw usage(`${what}: ${reason.replace(/[\r\n]+/g, ' ')}`);
}
