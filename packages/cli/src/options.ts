/**
 * The one option parser of every command: strict (unknown options and positionals are
 * refused), each option at most once unless declared repeatable, and `--` ending the options
 * (what follows is a command to run, for `run exec`).
 */
import { parseArgs } from 'node:util';
import { usage } from './io.js';

/** True when the options (what comes before `--`, if any) ask for help. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  const options = end === -1 ? args : args.slice(0, end);
  return options.includes('--help') || options.includes('-h');
}

/** What a command accepts: options with a value, flags without, and repeatable options. */
export interface OptionSpec<K extends string, F extends string, R extends string> {
  values?: readonly K[];
  flags?: readonly F[];
  repeatable?: readonly R[];
}

export type ParsedOptions<K extends string, F extends string, R extends string> = Partial<
  Record<K, string>
> &
  Partial<Record<F, true>> &
  Record<R, string[]>;

/**
 * Parses a command's options strictly. `values` are options with a value (at most once),
 * `flags` options without one (present as `true`), `repeatable` options with a value that may
 * be given any number of times (always an array).
 *
 * @example
 * const opts = parseOptions(args, { values: ['out'], flags: ['seal'] }); // opts.out, opts.seal
 */
export function parseOptions<K extends string, F extends string = never, R extends string = never>(
  args: readonly string[],
  spec: OptionSpec<K, F, R>,
): ParsedOptions<K, F, R> {
  const values = spec.values ?? [];
  const flags = spec.flags ?? [];
  const repeatable = spec.repeatable ?? [];
  let parsed: Record<string, unknown>;
  try {
    const options = Object.fromEntries([
      ...[...values, ...repeatable].map((n) => [
        n,
        { type: 'string' as const, multiple: true as const },
      ]),
      ...flags.map((n) => [n, { type: 'boolean' as const, multiple: true as const }]),
    ]);
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    // parseArgs' messages go on with advice about `--`; the first sentence is the reason.
    throw usage(text.split(/\.\s/)[0]!.replace(/\.$/, ''));
  }
  const out: Record<string, string | true | string[]> = {};
  for (const name of [...values, ...flags]) {
    const list = parsed[name] as Array<string | boolean> | undefined;
    if (list === undefined) continue;
    if (list.length > 1) throw usage(`--${name} given more than once`);
    out[name] = list[0] as string | true;
  }
  for (const name of repeatable) out[name] = (parsed[name] as string[] | undefined) ?? [];
  return out as ParsedOptions<K, F, R>;
}

/** The value of a required option, or a usage error naming it. */
export function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw usage(`--${name} is required`);
  return value;
}

/** A comma-separated list option (`--scope a,b`), trimmed, with no empty entry. */
export function listOption(value: string, name: string): string[] {
  const list = value.split(',').map((s) => s.trim());
  if (list.some((s) => s === '')) throw usage(`--${name} has an empty entry`);
  return list;
}
