/**
 * The operator CLI on a real terminal: run under util-linux `script`, which gives it a pseudo
 * terminal, it prints tables (not JSON) by default, shows paging progress on stderr, and reads
 * a secret value typed at a prompt without echoing it. Skipped where `script` is missing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, killLiveProcesses, track } from './helpers/cli-process.js';
import { operatorHome } from './helpers/cli-operator.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

const SCRIPT = '/usr/bin/script';
afterEach(killLiveProcesses);
const tmp = tempDir('agentpack-cli-tty-');
let service: TestService;
let env: Record<string, string>;
beforeAll(async () => {
  service = await startTestService();
  const home = operatorHome(join(tmp.dir, 'home'), BRIDGE_KEY);
  env = home.env({ AGENTPACK_URL: service.url, AGENTPACK_BRIDGE_KEY_FILE: home.bridgeKeyFile });
});
afterAll(async () => {
  await service.close();
  tmp.remove();
});

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** The CLI on a pseudo terminal; `typed` is written once `prompt` shows. Output is merged. */
function onTerminal(args: string[], typed?: { prompt: RegExp; text: string }) {
  const command = [process.execPath, CLI_BIN, ...args].map(quote).join(' ');
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = track(
      spawn(SCRIPT, ['-q', '-e', '-c', command, '/dev/null'], {
        env: { PATH: process.env['PATH'] ?? '', TERM: 'dumb', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      }),
    );
    let output = '';
    let sent = false;
    child.stdout!.on('data', (c: Buffer) => {
      output += c.toString();
      if (typed !== undefined && !sent && typed.prompt.test(output)) {
        sent = true;
        child.stdin!.write(typed.text);
      }
    });
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    if (typed === undefined) child.stdin!.end();
    const timer = setTimeout(() => reject(new Error(`timed out:\n${output}`)), 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe.skipIf(!existsSync(SCRIPT))('on a terminal', () => {
  it('lists print a table with progress while --all pages', async () => {
    for (let i = 0; i < 3; i++) {
      await service.post('/agents/create', { display_name: `tty ${i}` }, service.bridge);
    }
    const res = await onTerminal(['agents', 'list', '--limit', '1', '--all']);
    expect(res.code, res.output).toBe(0);
    // Progress lines are redrawn in place (CR, erase line) and cleared before the table.
    const lines = res.output.replace(/\x1b\[K/g, '').split(/\r\n|\r|\n/);
    expect(lines).toContainEqual(expect.stringMatching(/^AGENT +NAME +DISABLED +CREATED/));
    expect(res.output).toMatch(/agents: 2 so far \(page 2\)/);
    expect(res.output).not.toMatch(/"agents"/);
  });

  it('a value typed at the prompt is not echoed, and put prints no value', async () => {
    const agent = (await service.post('/agents/create', { display_name: 'typed' }, service.bridge))
      .body.agent_id;
    const res = await onTerminal(['secrets', 'put', 'typed_key', '--agent', agent], {
      prompt: /value of typed_key \(not echoed\): /,
      text: 'sk-typed-at-a-tty-9\r',
    });
    expect(res.code, res.output).toBe(0);
    expect(res.output).not.toContain('sk-typed-at-a-tty-9');
    expect(res.output).toMatch(/^version +1/m);
    const meta = await service.post(
      '/secrets/metadata',
      { agent_id: agent, name: 'typed_key' },
      service.bridge,
    );
    expect(meta.body.current_version).toBe(1);
  });
});
