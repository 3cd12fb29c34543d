/**
 * What the service's answer to one `/secrets/resolve` of `run exec --watch` (secret-watch.ts)
 * says, read strictly: values only when there is one per reference asked, in the order asked,
 * each naming the reference it is the value of. An answer that is not that is no answer (the
 * service cannot be reached): a value is never written into another reference's file.
 */
import { describeAnswer } from './service.js';

/** What one `/secrets/resolve` call said. */
export type Outcome =
  | { kind: 'values'; values: Array<{ version: number; value: string }> }
  | { kind: 'unresolvable'; index: number; reason: string }
  | { kind: 'ended'; why: string }
  | { kind: 'refused'; why: string }
  | { kind: 'unreachable'; why: string };

/** A reason the service gave, if it is a plain word (it is printed). */
function plainReason(details: unknown): string {
  const reason = (details as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' && /^[a-z_]{1,40}$/.test(reason) ? reason : 'refused';
}

export const CANNOT_CHECK = 'cannot check the secrets';

/** Reads a `/secrets/resolve` answer for `asked`: the files' names and refs, in the order sent. */
export function outcomeOf(
  status: number,
  text: string,
  asked: ReadonlyArray<{ name: string; ref: string }>,
): Outcome {
  const unreachable = (why: string): Outcome => ({
    kind: 'unreachable',
    why: `${CANNOT_CHECK}: ${why}`,
  });
  const count = asked.length;
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the status decides
  }
  if (status === 200) {
    const values = (body as { values?: unknown } | null)?.values;
    if (!Array.isArray(values) || values.length !== count) {
      return unreachable('the answer does not have one value per reference');
    }
    const checked: Array<{ version: number; value: string }> = [];
    for (const [index, item] of values.entries()) {
      const { ref, version, value } = (item ?? {}) as Record<string, unknown>;
      // As the first resolve of run exec: each value says whose it is, and must be the one asked.
      if (ref !== asked[index]!.ref) {
        return unreachable(`the answer's value ${index} is not that of ${asked[index]!.name}`);
      }
      if (!Number.isSafeInteger(version) || typeof value !== 'string') {
        return unreachable('the answer has a value that is not one');
      }
      checked.push({ version: version as number, value });
    }
    return { kind: 'values', values: checked };
  }
  const why = describeAnswer(status, text);
  if (status === 401) return { kind: 'ended', why };
  if (status === 429 || status >= 500 || status < 400) return unreachable(why);
  const details = (body as { error?: { details?: { index?: unknown } } } | null)?.error?.details;
  const index = details?.index;
  if (typeof index === 'number' && Number.isInteger(index) && index >= 0 && index < count) {
    return { kind: 'unresolvable', index, reason: plainReason(details) };
  }
  return { kind: 'refused', why };
}
