/**
 * The `audit` group (bridge key): `query` pages through the audit log, oldest first, filtered
 * by agent, run, action, category and time; `tail` follows it, polling /audit/query and
 * printing each new event once, until interrupted (SIGINT or SIGTERM end it cleanly, exit 0).
 * Events carry names, ids and versions, never a value, key or code.
 */
import {
  AUDIT_CATEGORIES,
  agentIdField,
  auditQueryRequest,
  runIdField,
} from '@agentpack-identity/protocol';
import {
  call,
  connect,
  CONNECTION_HELP,
  CONNECTION_VALUES,
  REFUSED_CREDENTIALS,
  type Connection,
} from '../connection.js';
import { CliError, NAME, nowMs, usage, type CliIo, type CommandGroup } from '../io.js';
import { intOption, parseOptions } from '../options.js';
import { LIST_OPTIONS_HELP, MAX_PAGE, PAGE_FLAGS, PAGE_VALUES, runList } from '../paging.js';
import { cell, OUTPUT_FLAGS, OUTPUT_HELP, outputMode, renderTable, type Column } from '../table.js';
import { checked } from '../validate.js';

const CATEGORIES: readonly string[] = AUDIT_CATEGORIES;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?(Z|[+-]\d\d:\d\d)$/;
const DEFAULT_INTERVAL_SECONDS = 2;
/** How far back each poll of `audit tail` looks again, for events committed late. */
const OVERLAP_MS = 5_000;

const FILTER_HELP = `  --agent AGENT          events of this agent
  --run RUN_ID           events of this run
  --action ACTION        e.g. secret.put, device_key.revoke
  --category CATEGORY    auth, settings or secrets`;

const HELP = {
  group: `usage: ${NAME} audit query [--agent AGENT] [--run RUN_ID] [--action ACTION]
           [--category CATEGORY] [--since TIME] [--until TIME] [--limit N] [--all]
       ${NAME} audit tail [--agent AGENT] [--run RUN_ID] [--action ACTION]
           [--category CATEGORY] [--since TIME] [--interval SECONDS]

Run "${NAME} audit COMMAND --help" for a command's options.
`,
  query: `usage: ${NAME} audit query [--agent AGENT] [--run RUN_ID] [--action ACTION]
    [--category CATEGORY] [--since TIME] [--until TIME] [--limit N] [--cursor C] [--all]

Prints audit events, oldest first (POST /audit/query, bridge key).

options:
${FILTER_HELP}
  --since TIME           from this RFC 3339 time on (inclusive), e.g. 2026-01-01T00:00:00Z
  --until TIME           before this time (exclusive)
${LIST_OPTIONS_HELP}
  -h, --help             this help
`,
  tail: `usage: ${NAME} audit tail [--agent AGENT] [--run RUN_ID] [--action ACTION]
    [--category CATEGORY] [--since TIME] [--interval SECONDS]

Follows the audit log: polls POST /audit/query every --interval seconds and prints each new
event once, as it arrives — one JSON object a line (NDJSON) off a terminal or with --json, one
table line on a terminal — until interrupted (Ctrl-C, SIGINT or SIGTERM: exit 0). A failed
poll (the service unreachable or unavailable) is reported on stderr and tried again; a
refusal (a bad credential or filter) ends it with exit 1.

options:
${FILTER_HELP}
  --since TIME           start at this RFC 3339 time (default: now, so only new events)
  --interval SECONDS     between polls, 1-3600 (default ${DEFAULT_INTERVAL_SECONDS})
${OUTPUT_HELP}
${CONNECTION_HELP}
  -h, --help             this help
`,
} as const;

/** `kind:agent_id` (and the key, token or run that acted). */
function actorCell(actor: unknown): string {
  if (typeof actor !== 'object' || actor === null) return cell(actor);
  const a = actor as Record<string, unknown>;
  const parts = [a['kind'], a['agent_id'] ?? a['uid']].filter((p) => p !== undefined);
  const via = a['via_delegation'] === undefined ? '' : ` via ${cell(a['via_delegation'])}`;
  return `${parts.map((p) => cell(p)).join(':')}${via}`;
}

/** `k=v k=v` of the target. */
function targetCell(target: unknown): string {
  if (typeof target !== 'object' || target === null) return cell(target);
  return Object.entries(target as Record<string, unknown>)
    .map(([k, v]) => `${cell(k)}=${cell(v)}`)
    .join(' ');
}

export const EVENT_COLUMNS: Column[] = [
  { header: 'AT', get: (e) => e['at'] },
  { header: 'CATEGORY', get: (e) => e['category'] },
  { header: 'ACTION', get: (e) => e['action'] },
  { header: 'ACTOR', get: (e) => actorCell(e['actor']) },
  { header: 'TARGET', get: (e) => targetCell(e['target']) },
  { header: 'RUN', get: (e) => e['run_id'] },
];

const time = (value: string | undefined, name: string) => {
  if (value === undefined) return undefined;
  if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
    throw usage(`--${name} must be an RFC 3339 time, such as 2026-01-01T00:00:00Z`);
  }
  return value;
};

const FILTER_VALUES = ['agent', 'run', 'action', 'category', 'since'] as const;

function filters(opts: Partial<Record<(typeof FILTER_VALUES)[number], string>>) {
  if (opts.category !== undefined && !CATEGORIES.includes(opts.category)) {
    throw usage(`--category must be one of ${CATEGORIES.join(', ')}`);
  }
  if (opts.action !== undefined && !/^[a-z][a-z_]*\.[a-z][a-z_]*$/.test(opts.action)) {
    throw usage('--action must be of the form noun.verb, e.g. secret.get');
  }
  const since = time(opts.since, 'since');
  return {
    ...(opts.agent === undefined ? {} : { agent_id: checked(agentIdField, opts.agent, '--agent') }),
    ...(opts.run === undefined ? {} : { run_id: checked(runIdField, opts.run, '--run') }),
    ...(opts.action === undefined ? {} : { action: opts.action }),
    ...(opts.category === undefined ? {} : { category: opts.category }),
    ...(since === undefined ? {} : { since }),
  };
}

async function auditQuery(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...CONNECTION_VALUES, ...PAGE_VALUES, ...FILTER_VALUES, 'until'],
    flags: [...OUTPUT_FLAGS, ...PAGE_FLAGS],
    refused: REFUSED_CREDENTIALS,
  });
  const until = time(opts.until, 'until');
  const body = { ...filters(opts), ...(until === undefined ? {} : { until }) };
  return runList(
    { path: '/audit/query', key: 'events', columns: EVENT_COLUMNS, schema: auditQueryRequest },
    body,
    opts,
    io,
  );
}

/** True for a poll failure worth trying again: no answer, or the service unavailable. */
const transient = (error: unknown) =>
  error instanceof CliError &&
  /^\/audit\/query: (cannot reach|HTTP 5\d\d|HTTP 429)/.test(error.message);

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Follows the log. Pages are read with the service's cursor; at the end of the log (no
 * next_cursor) the next poll starts again a few seconds before the newest event printed
 * (`since` is inclusive; an event's time may lag its commit, and Firestore orders by time)
 * and skips the events it already printed, so each event prints once.
 */
async function follow(
  conn: Connection,
  base: Record<string, unknown>,
  since: string,
  intervalMs: number,
  print: (event: Record<string, unknown>) => void,
  io: CliIo,
  signal: AbortSignal,
): Promise<void> {
  let from = since;
  let cursor: string | undefined;
  // The events printed at or after `from` (id → time): a poll from `from` sees them again.
  let printed = new Map<string, string>();
  while (!signal.aborted) {
    let answer: Record<string, unknown>;
    try {
      const body = {
        ...base,
        since: from,
        limit: MAX_PAGE,
        ...(cursor === undefined ? {} : { cursor }),
      };
      answer = await call(conn, '/audit/query', body, io, { signal });
    } catch (error) {
      if (signal.aborted) return;
      if (!transient(error)) throw error;
      io.stderr(`${NAME}: ${(error as Error).message} (trying again)\n`);
      cursor = undefined;
      await sleep(intervalMs, signal);
      continue;
    }
    const events = answer['events'];
    if (!Array.isArray(events)) throw new CliError('/audit/query: the answer has no events list');
    for (const event of events as Record<string, unknown>[]) {
      const id = String(event['event_id']);
      if (printed.has(id)) continue;
      print(event);
      printed.set(id, typeof event['at'] === 'string' ? event['at'] : from);
    }
    const next = answer['next_cursor'];
    if (typeof next === 'string' && next !== '') {
      cursor = next;
      continue;
    }
    cursor = undefined;
    // The next poll starts a little before the newest event printed (an event's time may lag
    // its commit), and skips what it already printed; older ids are forgotten.
    const latest = Math.max(0, ...[...printed.values()].map((at) => Date.parse(at)));
    const start = Math.max(Date.parse(since), latest - OVERLAP_MS);
    if (Number.isFinite(start) && start > Date.parse(from)) {
      from = new Date(start).toISOString();
      printed = new Map([...printed].filter(([, at]) => Date.parse(at) >= start));
    }
    await sleep(intervalMs, signal);
  }
}

async function auditTail(args: readonly string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, {
    values: [...CONNECTION_VALUES, ...FILTER_VALUES, 'interval'],
    flags: OUTPUT_FLAGS,
    refused: REFUSED_CREDENTIALS,
  });
  const { since, ...base } = filters(opts);
  const interval = intOption(opts.interval, 'interval', 1, 3600) ?? DEFAULT_INTERVAL_SECONDS;
  const mode = outputMode(opts, io);
  const conn = connect(opts, io, 'bridge');
  const stop = new AbortController();
  const release = io.onInterrupt?.(() => stop.abort()) ?? (() => {});
  let header = mode === 'table';
  const print = (event: Record<string, unknown>) => {
    if (mode === 'json') {
      io.stdout(`${JSON.stringify(event)}\n`);
      return;
    }
    const lines = renderTable([event], EVENT_COLUMNS).split('\n');
    io.stdout(`${(header ? lines : lines.slice(1)).join('\n')}\n`);
    header = false;
  };
  try {
    const start = since ?? new Date(nowMs(io)).toISOString();
    checked(auditQueryRequest, { ...base, since: start }, 'audit tail');
    await follow(conn, base, start, interval * 1000, print, io, stop.signal);
  } finally {
    release();
  }
  return 0;
}

export const AUDIT: CommandGroup = {
  help: HELP.group,
  hint: 'audit --help',
  commands: {
    query: { help: HELP.query, run: auditQuery },
    tail: { help: HELP.tail, run: auditTail },
  },
};
