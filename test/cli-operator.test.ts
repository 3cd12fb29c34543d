/**
 * The operator CLI's frame, as processes: --version, the top-level help (exit codes,
 * precedence), "did you mean" for commands and options, exit codes, the profile file (0600 in
 * a 0700 dir, a credential stored only as a file path unless asked twice, never printed
 * back), the precedence flag > env > profile against the real service, --value refused, and
 * tables on request vs JSON off a terminal. Needs the CLI built (npm run build).
 */
import { readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLiveProcesses } from './helpers/cli-process.js';
import { operatorHome, runCli } from './helpers/cli-operator.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ONE_LINE = /^agentpack-identity: [^\n]+\n$/;

afterEach(killLiveProcesses);
const tmp = tempDir('agentpack-cli-op-');
let service: TestService;
let home: ReturnType<typeof operatorHome>;
beforeAll(async () => {
  service = await startTestService();
  home = operatorHome(join(tmp.dir, 'home'), BRIDGE_KEY);
});
afterAll(async () => {
  await service.close();
  tmp.remove();
});

const cli = (args: string[], env: Record<string, string> = {}, input?: string) =>
  runCli(args, home.env(env), input === undefined ? {} : { input });

describe('the frame', () => {
  it('--version prints the package version', async () => {
    const version = JSON.parse(
      readFileSync(join(root, 'packages/cli/package.json'), 'utf8'),
    ).version;
    for (const args of [['--version'], ['-V']]) {
      const res = await cli(args);
      expect(res.code).toBe(0);
      expect(res.stdout).toBe(`agentpack-identity ${version}\n`);
    }
  });

  it('the help lists the groups, the precedence and the exit codes', async () => {
    const res = await cli(['--help']);
    expect(res.code).toBe(0);
    for (const text of [
      'agents list|create|get|disable|enable|retire',
      'audit query|tail',
      'keys issue|list|revoke',
      'settings list|set',
      'flag',
      'then the environment',
      'Exit codes: 0 done, 1 failed (or refused by the service), 2 bad command line, 3 not found',
    ]) {
      expect(res.stdout).toContain(text);
    }
  });

  it.each([
    [['agnets', 'list'], /unknown command "agnets" \(did you mean "agents"\?\)/],
    [['agents', 'lsit'], /agents: unknown command "lsit" \(did you mean "list"\?\)/],
    [['secrets', 'pt', 'x'], /did you mean "put"\?/],
    [['agents', 'list', '--limt', '5'], /Unknown option '--limt' \(did you mean --limit\?\)/],
    [['secrets', 'put', 'n', '--agnet', 'a'], /did you mean --agent\?/],
    [['frobnicate'], /unknown command "frobnicate" \(try/],
  ])('did you mean: %j', async (args, message) => {
    const res = await cli(args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
  });

  it.each([
    [['agents', 'get'], /AGENT_ID is required/],
    [['agents', 'get', 'Not An Id'], /AGENT_ID: agent_id must match/],
    [['agents', 'retire', 'agent-x'], /repeat the id as --confirm agent-x/],
    [['agents', 'retire', 'agent-x', '--confirm', 'agent-y'], /--confirm does not match/],
    [['agents', 'list', '--limit', '201'], /--limit must be a whole number from 1 to 200/],
    [['agents', 'list', '--json', '--table'], /--json or --table, not both/],
    [['audit', 'query', '--since', 'yesterday'], /--since must be an RFC 3339 time/],
    [['secrets', 'put', 'n', 'extra', '--agent', 'agent-a'], /unexpected argument #2/],
    [['keys', 'list'], /--agent AGENT is required/],
    [['agents', 'list', '--bridge-key', 'k'], /--bridge-key is refused/],
  ])('bad command line, exit 2: %j', async (args, message) => {
    const res = await cli(args, {
      AGENTPACK_URL: service.url,
      AGENTPACK_BRIDGE_KEY_FILE: home.bridgeKeyFile,
    });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(ONE_LINE);
    expect(res.stderr).toMatch(message);
  });

  it('--value is refused, its value never echoed, nothing sent', async () => {
    for (const args of [['--value', 'sk-in-argv-1'], ['--value=sk-in-argv-1']]) {
      const res = await cli(['secrets', 'put', 'leak', '--agent', 'agent-x', ...args], {
        AGENTPACK_URL: service.url,
        AGENTPACK_BRIDGE_KEY_FILE: home.bridgeKeyFile,
      });
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/--value is refused: a value in the command line is visible/);
      expect(res.stdout + res.stderr).not.toContain('sk-in-argv-1');
    }
    // A misplaced value (a second positional) is refused without being echoed either.
    const res = await cli(['secrets', 'put', 'leak', 'sk-in-argv-2', '--agent', 'agent-x']);
    expect(res.code).toBe(2);
    expect(res.stderr).not.toContain('sk-in-argv-2');
    expect(service.responses.join('')).not.toContain('sk-in-argv');
  });

  it('the service unreachable: exit 1 with one line', async () => {
    const res = await cli(['agents', 'get', 'agent-abc'], {
      AGENTPACK_URL: 'http://127.0.0.1:9',
      AGENTPACK_BRIDGE_KEY_FILE: home.bridgeKeyFile,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /^agentpack-identity: \/agents\/get: cannot reach http:\/\/127\.0\.0\.1:9/,
    );
  });
});

describe('profiles', () => {
  it('config set writes a 0600 file in a 0700 dir holding the key FILE path, not the key', async () => {
    expect((await cli(['config', 'set', 'url', service.url])).code).toBe(0);
    expect((await cli(['config', 'set', 'bridge-key-file', home.bridgeKeyFile])).code).toBe(0);
    expect(statSync(home.config).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(home.config)).mode & 0o777).toBe(0o700);
    const text = readFileSync(home.config, 'utf8');
    expect(text).not.toContain(BRIDGE_KEY);
    expect(JSON.parse(text).profiles.default).toEqual({
      url: service.url,
      bridge_key_file: home.bridgeKeyFile,
    });
    const get = await cli(['config', 'get', 'url']);
    expect(get).toMatchObject({ code: 0, stdout: `${service.url}\n` });
    // The profile alone is enough to talk to the service.
    const created = await cli(['agents', 'create', '--display-name', 'from the profile']);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ display_name: 'from the profile' });
  });

  it('flag > env > profile, for the URL and the bridge key', async () => {
    const wrongKey = join(home.dir, 'wrong-key');
    writeFileSync(wrongKey, 'not-the-bridge-key\n', { mode: 0o600 });
    // env over profile: a wrong key in the env wins over the right one in the profile.
    let res = await cli(['agents', 'list'], { AGENTPACK_BRIDGE_KEY_FILE: wrongKey });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/HTTP 401 unauthenticated/);
    // flag over env.
    res = await cli(['agents', 'list', '--bridge-key-file', home.bridgeKeyFile], {
      AGENTPACK_BRIDGE_KEY_FILE: wrongKey,
    });
    expect(res.code, res.stderr).toBe(0);
    // AGENTPACK_BRIDGE_KEY over AGENTPACK_BRIDGE_KEY_FILE.
    res = await cli(['agents', 'list'], {
      AGENTPACK_BRIDGE_KEY: BRIDGE_KEY,
      AGENTPACK_BRIDGE_KEY_FILE: wrongKey,
    });
    expect(res.code, res.stderr).toBe(0);
    // URL: env over profile, flag over env.
    res = await cli(['agents', 'list'], { AGENTPACK_URL: 'http://127.0.0.1:9' });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
    res = await cli(['agents', 'list', '--url', service.url], {
      AGENTPACK_URL: 'http://127.0.0.1:9',
    });
    expect(res.code, res.stderr).toBe(0);
  });

  it('--profile NAME selects a profile; an unknown one is a usage error with a suggestion', async () => {
    expect(
      (await cli(['config', 'set', 'url', 'http://127.0.0.1:9', '--profile', 'staging'])).code,
    ).toBe(0);
    let res = await cli(['--profile', 'staging', 'agents', 'list']);
    expect(res.code).toBe(2); // a profile does not inherit another's bridge key
    expect(res.stderr).toMatch(/no bridge key/);
    res = await cli([
      '--profile',
      'staging',
      'agents',
      'list',
      '--bridge-key-file',
      home.bridgeKeyFile,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/127\.0\.0\.1:9/);
    res = await cli(['agents', 'list', '--profile', 'stagign']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/no profile "stagign".*did you mean "staging"/);
    // An env override of a profile named on purpose is said on stderr.
    res = await cli(
      ['agents', 'list', '--profile', 'staging', '--bridge-key-file', home.bridgeKeyFile],
      {
        AGENTPACK_URL: service.url,
      },
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/\$AGENTPACK_URL overrides the url of profile "staging"/);
    const list = await cli(['config', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toMatchObject({
      current: 'default',
      profiles: { staging: {} },
    });
    expect((await cli(['config', 'use', 'staging'])).code).toBe(0);
    expect((await cli(['config', 'get', 'url'])).stdout).toBe('http://127.0.0.1:9\n');
    expect((await cli(['config', 'use', 'default'])).code).toBe(0);
    expect((await cli(['config', 'get', 'device-key-file'])).code).toBe(3);
    expect((await cli(['config', 'set', 'urll', 'x'])).stderr).toMatch(/did you mean "url"/);
  });

  it('the bridge key itself is stored only when asked twice, with a warning, and never printed', async () => {
    let res = await cli(['config', 'set', 'bridge-key', '--profile', 'stored'], {}, BRIDGE_KEY);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--from-stdin --store-secret/);
    res = await cli(['config', 'set', 'bridge-key', BRIDGE_KEY, '--profile', 'stored']);
    expect(res.code).toBe(2);
    expect(res.stderr).not.toContain(BRIDGE_KEY);
    res = await cli(
      ['config', 'set', 'bridge-key', '--from-stdin', '--store-secret', '--profile', 'stored'],
      {},
      `${BRIDGE_KEY}\n`,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/warning: the bridge key is now stored in clear/);
    expect(statSync(home.config).mode & 0o777).toBe(0o600);
    await cli(['config', 'set', 'url', service.url, '--profile', 'stored']);
    res = await cli(['agents', 'list', '--profile', 'stored']);
    expect(res.code, res.stderr).toBe(0);
    for (const args of [
      ['config', 'get', 'bridge-key', '--profile', 'stored'],
      ['config', 'list', '--json'],
      ['config', 'list', '--table'],
    ]) {
      res = await cli(args);
      expect(res.code).toBe(0);
      expect(res.stdout + res.stderr).not.toContain(BRIDGE_KEY);
    }
    expect((await cli(['config', 'list', '--table'])).stdout).toMatch(/\(stored\)/);
  });

  it('a profile file or key file others can read is refused', async () => {
    chmodSync(home.config, 0o644);
    try {
      const res = await cli(['agents', 'list']);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/readable by others .*chmod 600/);
    } finally {
      chmodSync(home.config, 0o600);
    }
    const loose = join(home.dir, 'loose-key');
    writeFileSync(loose, `${BRIDGE_KEY}\n`, { mode: 0o644 });
    chmodSync(loose, 0o644);
    const res = await cli(['agents', 'list', '--bridge-key-file', loose]);
    expect(res.code).toBe(1);
    expect(res.stderr).not.toContain(BRIDGE_KEY);
  });
});

describe('output', () => {
  it('JSON off a terminal, a table with --table, JSON with --json', async () => {
    const json = await cli(['agents', 'get', 'agent-does-not-exist-1']);
    expect(json.code).toBe(3);
    expect(json.stderr).toMatch(/HTTP 404 not_found/);
    const created = JSON.parse(
      (await cli(['agents', 'create', '--display-name', 'table me'])).stdout,
    );
    const table = await cli(['agents', 'get', created.agent_id, '--table']);
    expect(table.stdout).toMatch(new RegExp(`^agent_id +${created.agent_id}$`, 'm'));
    expect(table.stdout).toMatch(/^display_name +table me$/m);
    const forced = await cli(['--json', 'agents', 'get', created.agent_id]);
    expect(JSON.parse(forced.stdout)).toMatchObject({ agent_id: created.agent_id });
  });
});
