/**
 * Paginated lists: one page (`--limit N`, `--cursor C`) or every page (`--all`), following
 * `next_cursor` until it is null. While `--all` pages, a terminal shows the count so far on
 * stderr (never when stderr is not a terminal: scripts see only the result).
 */
import { LIST_LIMIT_MAX } from '@agentpack-identity/protocol';
import { connect, call, CONNECTION_HELP, type Connection } from './connection.js';
import { CliError, usage, type CliIo } from './io.js';
import { intOption } from './options.js';
import { outputMode, printList, type Column, OUTPUT_HELP } from './table.js';
import { checked, type Schema } from './validate.js';

export const PAGE_VALUES = ['limit', 'cursor'] as const;
export const PAGE_FLAGS = ['all'] as const;
export const MAX_PAGE = LIST_LIMIT_MAX;

export const PAGE_HELP = `  --limit N              items per page, 1-${MAX_PAGE} (default: the service's, 50)
  --cursor CURSOR        start at this page (a previous answer's next_cursor)
  --all                  follow next_cursor to the end and print every item`;

/** The help of a list command's common options. */
export const LIST_OPTIONS_HELP = `${PAGE_HELP}\n${OUTPUT_HELP}\n${CONNECTION_HELP}`;

/** A progress line on a terminal's stderr; `done()` clears it. */
export function progress(io: CliIo) {
  const on = io.tty?.stderr === true;
  let shown = false;
  return {
    show(text: string) {
      if (!on) return;
      io.stderr(`\r\x1b[K${text}`);
      shown = true;
    },
    done() {
      if (on && shown) io.stderr('\r\x1b[K');
      shown = false;
    },
  };
}

export interface PageOptions {
  limit?: string;
  cursor?: string;
  all?: true;
}

/**
 * Every item of the list `key` of `path` from `body`'s page on (all pages with `--all`), and
 * the cursor of the page after the last one read (null at the end).
 */
export async function readPages(
  conn: Connection,
  path: string,
  body: Record<string, unknown>,
  key: string,
  io: CliIo,
  opts: PageOptions,
  schema?: Schema<unknown>,
): Promise<{ items: Record<string, unknown>[]; next_cursor: string | null }> {
  const limit = intOption(opts.limit, 'limit', 1, MAX_PAGE);
  if (opts.cursor === '') throw usage('--cursor is empty');
  if (opts.all === true && opts.cursor !== undefined)
    throw usage('give --all or --cursor, not both');
  let cursor: string | undefined = opts.cursor;
  // The route's own request schema, before anything is sent.
  if (schema !== undefined) {
    checked(
      schema,
      {
        ...body,
        ...(cursor === undefined ? {} : { cursor }),
        ...(limit === undefined ? {} : { limit }),
      },
      path.slice(1),
    );
  }
  const items: Record<string, unknown>[] = [];
  const bar = progress(io);
  const seen = new Set<string>();
  try {
    for (let page = 1; ; page++) {
      const answer = await call(
        conn,
        path,
        {
          ...body,
          ...(cursor === undefined ? {} : { cursor }),
          ...(limit === undefined ? {} : { limit }),
        },
        io,
      );
      const list = answer[key];
      if (!Array.isArray(list)) throw new CliError(`${path}: the answer has no ${key} list`);
      items.push(...(list as Record<string, unknown>[]));
      const next = answer['next_cursor'];
      const nextCursor = typeof next === 'string' && next !== '' ? next : null;
      if (opts.all !== true || nextCursor === null) return { items, next_cursor: nextCursor };
      // A service that hands back a cursor already followed would page forever.
      if (seen.has(nextCursor)) throw new CliError(`${path}: the service repeated a cursor`);
      seen.add(nextCursor);
      cursor = nextCursor;
      bar.show(`${key}: ${items.length} so far (page ${page})`);
    }
  } finally {
    bar.done();
  }
}

/** What a list command is: its route, body, answer key and table columns. */
export interface ListSpec {
  path: string;
  key: string;
  columns: readonly Column[];
  /** The protocol's request schema of the route. */
  schema?: Schema<unknown>;
}

/** Runs a list command: connects, reads the pages asked for, prints them. */
export async function runList(
  spec: ListSpec,
  body: Record<string, unknown>,
  opts: PageOptions & { json?: true; table?: true } & Parameters<typeof connect>[0],
  io: CliIo,
  as: 'bridge' | 'device' | 'either' = 'bridge',
): Promise<number> {
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, as);
  const { items, next_cursor } = await readPages(
    conn,
    spec.path,
    body,
    spec.key,
    io,
    opts,
    spec.schema,
  );
  printList(io, mode, spec.key, items, spec.columns, next_cursor);
  return 0;
}
