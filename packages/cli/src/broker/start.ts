/**
 * Starting the broker for `run exec`: read the brokered keys with the host's device, then listen
 * on loopback. Every failure stops the exec before its command starts (fail closed), and the keys
 * read so far are zeroed.
 */
import { CliError, NAME, usage, type CliIo } from '../io.js';
import type { RunDir } from '../run-dir.js';
import { readBrokeredKeys } from './keys.js';
import type { Brokered } from './providers.js';
import { startBroker, type Broker } from './server.js';

/**
 * `AGENTPACK_BROKER_PORT`: a fixed loopback port for the broker (for a host whose firewall or
 * proxy names one); default any free port. A port that cannot be bound stops the exec.
 */
function brokerPort(io: CliIo): { port?: number } {
  const text = io.env['AGENTPACK_BROKER_PORT'];
  if (text === undefined || text === '') return {};
  const port = Number(text);
  if (!/^[0-9]{1,5}$/.test(text) || port < 1 || port > 65535) {
    throw usage('AGENTPACK_BROKER_PORT must be a port number from 1 to 65535');
  }
  return { port };
}

/** Reads the brokered keys with the host's device and starts the broker (fail closed). */
export async function startBrokerFor(
  run: RunDir,
  brokered: { deviceDir: string; list: Brokered[]; maxRequests: number | null },
  io: CliIo,
): Promise<Broker> {
  const port = brokerPort(io); // a bad value is a usage error, before any key is read
  const refs = brokered.list.map((b) => b.ref);
  const keys = await readBrokeredKeys(run.info.url, brokered.deviceDir, refs, io);
  try {
    return await startBroker(
      brokered.list.map((b, i) => ({ provider: b.provider, key: keys[i]! })),
      {
        maxRequests: brokered.maxRequests,
        log: (line) => io.stderr(`${NAME} ${line}\n`),
        ...port,
      },
    );
  } catch (error) {
    for (const key of keys) key.fill(0);
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(`cannot start the credential broker on 127.0.0.1 (${code})`);
  }
}
