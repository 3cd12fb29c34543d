/**
 * The one option parser of every command: strict (unknown options are refused, with the
 * closest known one suggested; positionals only where a command declares them), each option at
 * most once unless declared repeatable, and `--` ending the options (what follows is a command
 * to run, for `run exec`).
 */
import { parseArgs } from 'node:util';
import { usage } from './io.js';
import { didYouMean } from './suggest.js';

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
  /**
   * Positional arguments by name, in order (e.g. `AGENT_ID`); a name ending in `?` is
   * optional. Without this, a positional argument is refused.
   */
  positionals?: readonly string[];
  /**
   * Options refused outright, with the reason (e.g. `--value`: a secret in the command line
   * is visible to other users in `ps`). The message never repeats what was given.
   */
  refused?: Readonly<Record<string, string>>;
  /**
   * Never quote a stray argument, even where the command takes none: for a command whose
   * misplaced argument is likely a credential (a token pasted without its option).
   */
  quiet?: true;
}

export type ParsedOptions<K extends string, F extends string, R extends string> = Partial<
  Record<K, string>
> &
  Partial<Record<F, true>> &
  Record<R, string[]> & { _: string[] };

/** Refuses any option of `refused` before anything else looks at the arguments. */
function refuse(args: readonly string[], refused: Readonly<Record<string, string>>): void {
  const end = args.indexOf('--');
  for (const arg of end === -1 ? args : args.slice(0, end)) {
    const name = /^--([^=]+)/.exec(arg)?.[1];
    if (name !== undefined && Object.hasOwn(refused, name)) {
      throw usage(`--${name} is refused: ${refused[name]}`);
    }
  }
}

/**
 * Parses a command's options strictly. `values` are options with a value (at most once),
 * `flags` options without one (present as `true`), `repeatable` options with a value that may
 * be given any number of times (always an array), `_` the positional arguments.
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
  const positionals = spec.positionals ?? [];
  if (spec.refused !== undefined) refuse(args, spec.refused);
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    const options = Object.fromEntries([
      ...[...values, ...repeatable].map((n) => [
        n,
        { type: 'string' as const, multiple: true as const },
      ]),
      ...flags.map((n) => [n, { type: 'boolean' as const, multiple: true as const }]),
    ]);
    parsed = parseArgs({
      args: [...args],
      options,
      strict: true,
      // parseArgs' own refusal of a positional quotes it; with `quiet`, the count is checked
      // below instead, without echoing anything.
      allowPositionals: positionals.length > 0 || spec.quiet === true,
    });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    // parseArgs' messages go on with advice about `--`; the first sentence is the reason.
    const reason = text.split(/\.\s/)[0]!.replace(/\.$/, '');
    const unknown = /^Unknown option '--([^']+)'/.exec(reason)?.[1];
    const known = [...values, ...flags, ...repeatable, 'help'].map((n) => `--${n}`);
    throw usage(unknown === undefined ? reason : reason + didYouMean(`--${unknown}`, known, ''));
  }
  const out: Record<string, string | true | string[]> = {};
  for (const name of [...values, ...flags]) {
    const list = parsed.values[name] as Array<string | boolean> | undefined;
    if (list === undefined) continue;
    if (list.length > 1) throw usage(`--${name} given more than once`);
    out[name] = list[0] as string | true;
  }
  for (const name of repeatable) out[name] = (parsed.values[name] as string[] | undefined) ?? [];
  const given = parsed.positionals;
  if (given.length > positionals.length) {
    // Not echoed: a misplaced argument may be a secret that belongs in a file or on stdin.
    const takes = positionals.length === 0 ? 'no arguments' : positionals.join(' ');
    throw usage(`unexpected argument #${positionals.length + 1} (this command takes ${takes})`);
  }
  const missing = positionals.slice(given.length).find((name) => !name.endsWith('?'));
  if (missing !== undefined) throw usage(`${missing} is required`);
  return { ...out, _: given } as ParsedOptions<K, F, R>;
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

/** A whole number option within [min, max], or a usage error naming it. */
export function intOption(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw usage(`--${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}
