/**
 * The CLI, `agentpack-identity`: one dispatch table of command groups, each in its own file
 * under commands/ with its help beside its commands —
 *   keys, token   the operator's capability-token signing key and tokens (commands/tokens.ts)
 *   secrets, maintenance  jobs on the service's store (commands/maintenance.ts)
 *   device        an enrolled device's keys, enrollment, signed requests (commands/device.ts)
 *   run           ephemeral runs: spawn, and exec a command as a run (commands/run*.ts)
 *
 * Exit codes: 0 done, 1 the command failed (bad key file, refused value, registration refused),
 * 2 the command line itself is wrong (unknown command or option, missing option); `run exec`
 * exits with its command's code.
 */
import { DEVICE } from './commands/device.js';
import { MAINTENANCE, SECRETS } from './commands/maintenance.js';
import { RUN } from './commands/run.js';
import { KEYS, TOKEN } from './commands/tokens.js';
import { CliError, NAME, usage, type CliIo, type CommandGroup } from './io.js';
import { wantsHelp } from './options.js';

export type { CliIo } from './io.js';

const HELP = `${NAME}: operator and device tooling for agentpack-identity

usage:
  ${NAME} keys generate --out FILE [--kid KID]
  ${NAME} token mint --key FILE --sub AGENT --scope RPC[,RPC...] [--ttl SECONDS]
      [--iss ISSUER] [--aud AUDIENCE] [--register URL]
  ${NAME} secrets rewrap [--data-dir DIR] [--batch N] [--after ID]
  ${NAME} maintenance prune [--data-dir DIR]
  ${NAME} maintenance migrate-digests [--data-dir DIR]
  ${NAME} device keygen --out DIR
  ${NAME} device enroll --url URL --code CODE --keys DIR [--label LABEL]
  ${NAME} device request --url URL --keys DIR --path PATH [--body JSON] [--delegation ID]
      [--seal]
  ${NAME} device sign-attestation --keys DIR --job-id ID --input-sha256 H --output-sha256 H
      --rc N
  ${NAME} run spawn --url URL --device-key-file FILE --task TASK --scope RPC[,RPC...]
      [--ttl SECONDS] --out DIR [--parent-dir DIR]
  ${NAME} run exec --run-dir DIR [--ref NAME=REF ...] -- COMMAND [ARGS...]

commands:
  keys generate            write a new Ed25519 signing key (private JWK, mode 0600), print its
                           public JWK
  token mint               sign a capability token with that key and print it
  secrets rewrap           re-wrap the data keys of stored secrets under the current primary key
  maintenance prune        delete expired nonces, enrollments and runs from the store
  maintenance migrate-digests
                           move device keys and codes stored before keyed digests to their
                           keyed ids
  device keygen            make a device's two private keys, print its public keys and
                           fingerprint
  device enroll            enroll the device with a one-time code, store its device key
  device request           send a request signed by the device, open sealed secrets
  device sign-attestation  sign a job attestation with the device's signing key
  run spawn                spawn an ephemeral run with a fresh key, write its directory
  run exec                 run a command as a run, its secrets in private files, then
                           complete the run

Run "${NAME} COMMAND --help" for a command's options.
Exit codes: 0 done, 1 the command failed, 2 bad command line.
`;

/** Every command group, by the name it is called with. */
export const GROUPS: Readonly<Record<string, CommandGroup>> = {
  keys: KEYS,
  token: TOKEN,
  secrets: SECRETS,
  maintenance: MAINTENANCE,
  device: DEVICE,
  run: RUN,
};

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h';

function help(io: CliIo, text: string): number {
  io.stdout(text);
  return 0;
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, action, ...rest] = argv;
  if (name === undefined) {
    io.stderr(HELP);
    return 2;
  }
  if (name === 'help' || isHelp(name)) return help(io, HELP);
  const group = Object.hasOwn(GROUPS, name) ? GROUPS[name] : undefined;
  if (group === undefined) throw usage(`unknown command "${name}" (try "${NAME} --help")`);
  const command =
    action !== undefined && Object.hasOwn(group.commands, action)
      ? group.commands[action]
      : undefined;
  if (command !== undefined) {
    if (wantsHelp(rest)) return help(io, command.help);
    return await command.run(rest, io);
  }
  if (isHelp(action)) return help(io, group.help);
  if (action === undefined) throw usage(`${name}: missing command (try "${group.hint}")`);
  throw usage(`${name}: unknown command "${action}" (try "${group.hint}")`);
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

/** The process entry, called by `bin/agentpack-identity.js`. */
export async function main(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
  });
}
