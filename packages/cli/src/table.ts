/**
 * What the operator commands print: a human table on a terminal, JSON for scripts. Stdout a
 * TTY → tables; otherwise JSON; `--json` forces JSON and `--table` forces tables (tests, or a
 * pager). Table cells never carry a control character (an id or a name shown to an operator
 * cannot move the cursor or recolour the terminal), and JSON is the service's answer as is.
 */
import { usage, type CliIo } from './io.js';

export type OutputMode = 'json' | 'table';

/** The flags every printing command accepts. */
export const OUTPUT_FLAGS = ['json', 'table'] as const;

export const OUTPUT_HELP = `  --json              print JSON (the default when stdout is not a terminal)
  --table             print a table (the default on a terminal)`;

/** How to print, from `--json` / `--table` and whether stdout is a terminal. */
export function outputMode(opts: { json?: true; table?: true }, io: CliIo): OutputMode {
  if (opts.json === true && opts.table === true) {
    throw usage('give --json or --table, not both');
  }
  if (opts.json === true) return 'json';
  if (opts.table === true) return 'table';
  return io.tty?.stdout === true ? 'table' : 'json';
}

/** One cell: text without control characters, `-` for nothing, lists comma-separated. */
export function cell(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = '-';
  else if (typeof value === 'string') text = value === '' ? '""' : value;
  else if (Array.isArray(value)) text = value.map((v) => cell(v)).join(',');
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  return text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '?');
}

/** A column: its header and how to get its cell from a row. */
export interface Column {
  header: string;
  get(row: Record<string, unknown>): unknown;
}

/** A column of one field, its header the field name in capitals. */
export const field = (name: string, header = name.toUpperCase()): Column => ({
  header,
  get: (row) => row[name],
});

/** Rows as a table: a header line, then one line per row, columns padded to their widest. */
export function renderTable(rows: readonly Record<string, unknown>[], columns: readonly Column[]) {
  const cells = rows.map((row) => columns.map((c) => cell(c.get(row))));
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((line) => line[i]!.length)),
  );
  const line = (parts: readonly string[]) =>
    parts
      .map((p, i) => (i === parts.length - 1 ? p : p.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map((parts) => line(parts))].join('\n');
}

/** An object as `key  value` lines, keys padded. */
export function renderObject(object: Record<string, unknown>): string {
  const keys = Object.keys(object);
  const width = Math.max(0, ...keys.map((k) => k.length));
  return keys.map((k) => `${cell(k).padEnd(width)}  ${cell(object[k])}`).join('\n');
}

/** Prints one answer object: JSON, or its fields as lines. */
export function printObject(io: CliIo, mode: OutputMode, object: Record<string, unknown>) {
  io.stdout(mode === 'json' ? `${JSON.stringify(object, null, 2)}\n` : `${renderObject(object)}\n`);
}

/**
 * Prints a list: JSON `{<key>: items, next_cursor}`, or a table (with the count, and how to
 * get the next page, on stderr).
 */
export function printList(
  io: CliIo,
  mode: OutputMode,
  key: string,
  items: readonly Record<string, unknown>[],
  columns: readonly Column[],
  nextCursor: string | null,
): void {
  if (mode === 'json') {
    io.stdout(`${JSON.stringify({ [key]: items, next_cursor: nextCursor }, null, 2)}\n`);
    return;
  }
  if (items.length === 0) io.stderr(`no ${key}\n`);
  else io.stdout(`${renderTable(items, columns)}\n`);
  if (nextCursor !== null) {
    io.stderr(`more: add --cursor ${cell(nextCursor)} for the next page, or --all\n`);
  }
}
