/**
 * The CLI, `agentpack-identity`: one dispatch table of command groups, each in its own file
 * under commands/ with its help beside its commands —
 *   config        the operator's profiles (commands/config.ts)
 *   agents, keys, secrets, delegations, runs, audit, settings, issuers, roles
 *                 the operator plane, over HTTP (commands/<group>.ts, runs-admin.ts)
 *   keys generate, token   the capability-token signing key and tokens (commands/tokens.ts)
 *   secrets rewrap, maintenance  jobs on the service's store (commands/maintenance.ts)
 *   device        an enrolled device's keys, enrollment, signed requests (commands/device.ts)
 *   run           ephemeral runs: spawn, exec a command as a run, run tokens (commands/run*.ts)
 *   auth          a workload's login by its platform's token: exchange (commands/auth.ts)
 *
 * Exit codes (io.ts EXIT): 0 done, 1 the command failed or the service refused it, 2 the
 * command line itself is wrong, 3 not found; `run exec` exits with its command's code.
 */
import { readFileSync } from 'node:fs';
import { AGENTS } from './commands/agents.js';
import { AUDIT } from './commands/audit.js';
import { AUTH } from './commands/auth.js';
import { CONFIG } from './commands/config.js';
import { DELEGATIONS } from './commands/delegations.js';
import { DEVICE } from './commands/device.js';
import { ISSUERS } from './commands/issuers.js';
import { KEYS } from './commands/keys.js';
import { MAINTENANCE } from './commands/maintenance.js';
import { ROLES } from './commands/roles.js';
import { RUN } from './commands/run.js';
import { RUNS } from './commands/runs-admin.js';
import { SECRETS } from './commands/secrets.js';
import { SETTINGS } from './commands/settings.js';
import { TOKEN } from './commands/tokens.js';
import { CliError, NAME, usage, type CliIo, type CommandGroup } from './io.js';
import { wantsHelp } from './options.js';
import { didYouMean } from './suggest.js';

export type { CliIo } from './io.js';

const HELP = `${NAME}: operator and device tooling for agentpack-identity

usage: ${NAME} [--profile NAME] [--json | --table] COMMAND ...

operator commands (over HTTP, with the bridge key unless said otherwise):
  ${NAME} config set|get|unset|list|use|path      profiles: url, bridge-key-file, ...
  ${NAME} agents list|create|get|disable|enable|retire
  ${NAME} keys issue|list|revoke                   agents' device keys
  ${NAME} secrets put|list|metadata|delete|undelete|destroy   (--agent AGENT | --shared)
  ${NAME} secrets grant|ungrant                    shared secrets' readers
  ${NAME} secrets get NAME --device-key-file FILE  an agent reads (the bridge key never does)
  ${NAME} delegations list|create|revoke
  ${NAME} runs list|revoke
  ${NAME} audit query|tail
  ${NAME} settings list|set
  ${NAME} issuers put|list|delete                  trusted issuers of workload tokens
  ${NAME} roles put|get|list|delete                what their tokens are exchanged for

offline and on the service's machine:
  ${NAME} keys generate --out FILE [--kid KID]
  ${NAME} token mint --key FILE --sub AGENT --scope RPC[,RPC...] [--ttl SECONDS]
      [--iss ISSUER] [--aud AUDIENCE] [--register URL]
  ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]
  ${NAME} maintenance prune [--data-dir DIR]
  ${NAME} maintenance migrate-digests [--data-dir DIR]

on an agent's machine:
  ${NAME} device keygen --out DIR
  ${NAME} device enroll --url URL --code CODE --keys DIR [--label LABEL]
  ${NAME} device request --url URL --keys DIR --path PATH [--body JSON] [--delegation ID]
      [--seal]
  ${NAME} device sign-attestation --keys DIR --job-id ID --input-sha256 H --output-sha256 H
      --rc N
  ${NAME} run spawn --url URL --device-key-file FILE --task TASK --scope RPC[,RPC...]
      [--ttl SECONDS] [--audience AUD] --out DIR [--parent-dir DIR]
  ${NAME} run exec --run-dir DIR [--ref NAME=REF ...] [--watch [SECONDS]
      [--reload-signal SIG]] -- COMMAND [ARGS...]
  ${NAME} run token --run-dir DIR --audience AUD [--out FILE]

on a workload with no static credential (its platform's token instead):
  ${NAME} auth exchange --url URL --role ROLE --subject-token-file FILE|- --out DIR
      [--task TASK] [--ttl SECONDS] [--audience AUD]

configuration: each setting comes from the first place that has it — a flag (--url,
--bridge-key-file, --device-key-file), then the environment (AGENTPACK_URL;
AGENTPACK_BRIDGE_KEY, then AGENTPACK_BRIDGE_KEY_FILE; AGENTPACK_DEVICE_KEY_FILE), then the
profile (--profile NAME, else $AGENTPACK_PROFILE, else the current one; the file is
$AGENTPACK_CONFIG, else ~/.config/agentpack-identity/config.json, mode 0600). A key or a
secret value is never taken from the command line (other users can read it in ps).

output: a table when stdout is a terminal, JSON otherwise; --json or --table forces one.
Progress (long lists with --all, retire) shows on stderr, on a terminal only.

Run "${NAME} COMMAND --help" for a group's commands, "${NAME} COMMAND SUB --help" for one's
options, "${NAME} --version" for the version.
Exit codes: 0 done, 1 failed (or refused by the service), 2 bad command line, 3 not found.
`;

/** Every command group, by the name it is called with. */
export const GROUPS: Readonly<Record<string, CommandGroup>> = {
  config: CONFIG,
  agents: AGENTS,
  keys: KEYS,
  secrets: SECRETS,
  delegations: DELEGATIONS,
  runs: RUNS,
  audit: AUDIT,
  settings: SETTINGS,
  issuers: ISSUERS,
  roles: ROLES,
  token: TOKEN,
  maintenance: MAINTENANCE,
  device: DEVICE,
  run: RUN,
  auth: AUTH,
};

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h';

function help(io: CliIo, text: string): number {
  io.stdout(text);
  return 0;
}

/** The CLI package's version, from its package.json (next to lib/). */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Options that may come before the command, moved to the command's own options. */
function splitGlobals(argv: readonly string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json' || arg === '--table' || arg.startsWith('--profile=')) globals.push(arg);
    else if (arg === '--profile') {
      if (argv[i + 1] === undefined) throw usage('--profile needs a NAME');
      globals.push(arg, argv[++i]!);
    } else break;
  }
  return { globals, rest: argv.slice(i) };
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    io.stdout(`${NAME} ${version()}\n`);
    return 0;
  }
  const { globals, rest: line } = splitGlobals(argv);
  const [name, action, ...rest] = line;
  if (name === undefined) {
    if (globals.length > 0) throw usage(`missing command (try "${NAME} --help")`);
    io.stderr(HELP);
    return 2;
  }
  if (name === 'help' || isHelp(name)) return help(io, HELP);
  if (name === '--version' || name === '-V') {
    io.stdout(`${NAME} ${version()}\n`);
    return 0;
  }
  const group = Object.hasOwn(GROUPS, name) ? GROUPS[name] : undefined;
  if (group === undefined) {
    throw usage(
      `unknown command "${name}"${didYouMean(name, Object.keys(GROUPS))} (try "${NAME} --help")`,
    );
  }
  const command =
    action !== undefined && Object.hasOwn(group.commands, action)
      ? group.commands[action]
      : undefined;
  if (command !== undefined) {
    if (wantsHelp(rest)) return help(io, command.help);
    return await command.run([...globals, ...rest], io);
  }
  if (isHelp(action)) return help(io, group.help);
  if (action === undefined) throw usage(`${name}: missing command (try "${group.hint}")`);
  throw usage(
    `${name}: unknown command "${action}"${didYouMean(action, Object.keys(group.commands))} (try "${group.hint}")`,
  );
}

/**
 * Runs the CLI on `argv` (the arguments after the program name) and resolves with the exit
 * code. Never throws: a failure is written to `io.stderr` as one line.
 *
 * @example
 * process.exitCode = await run(process.argv.slice(2), { stdout: ..., stderr: ..., env: process.env });
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`${NAME}: ${message.replace(/[\r\n]+/g, ' ')}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}

/** All of stdin, refusing more than `maxBytes`. */
async function readStdin(maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > maxBytes) {
      for (const c of chunks) c.fill(0);
      throw new CliError(`stdin holds more than ${maxBytes} bytes`);
    }
    chunks.push(buffer);
  }
  const all = Buffer.concat(chunks);
  for (const c of chunks) c.fill(0);
  return all;
}

/** One line typed on the terminal, not echoed (raw mode); Ctrl-C aborts, Ctrl-D or Enter ends. */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  let value = '';
  return new Promise((resolve, reject) => {
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    function onData(chunk: string) {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          return resolve(value);
        }
        if (ch === '\u0003') {
          finish();
          return reject(new CliError('interrupted'));
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    }
    stdin.on('data', onData);
  });
}

/** The process entry, called by `bin/agentpack-identity.js`. */
export async function main(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    tty: {
      stdout: process.stdout.isTTY === true,
      stderr: process.stderr.isTTY === true,
      stdin: process.stdin.isTTY === true,
    },
    readStdin,
    readHidden,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
  });
}
