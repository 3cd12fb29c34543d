/**
 * The operator CLI against the real service over HTTP, as processes: agents (create, get,
 * disable, enable, list paged with --all over several pages), device keys (issue to a 0600
 * file, list, revoke), and secrets provisioned write-only by the bridge key — the value read
 * from stdin or a file, never echoed by put, never in argv or stderr — read back only with the
 * agent's device key; shared secrets granted and ungranted. Needs the CLI built.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLiveProcesses } from './helpers/cli-process.js';
import { operatorHome, runCli } from './helpers/cli-operator.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

afterEach(killLiveProcesses);
const tmp = tempDir('agentpack-cli-svc-');
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

const cli = (args: string[], input?: string, env: Record<string, string> = {}) =>
  runCli(
    args,
    home.env({ AGENTPACK_URL: service.url, AGENTPACK_BRIDGE_KEY_FILE: home.bridgeKeyFile, ...env }),
    input === undefined ? {} : { input },
  );

async function ok(args: string[], input?: string): Promise<any> {
  const res = await cli(args, input);
  expect(res.code, `${args.join(' ')}\n${res.stderr}`).toBe(0);
  return res.stdout.trim() === '' ? null : JSON.parse(res.stdout);
}

async function newAgent(name: string): Promise<string> {
  return (await ok(['agents', 'create', '--display-name', name])).agent_id;
}

describe('agents', () => {
  it('create, get, disable, enable', async () => {
    const created = await ok([
      'agents',
      'create',
      '--display-name',
      'ops one',
      '--agent-id',
      'ops-one',
    ]);
    expect(created).toMatchObject({
      agent_id: 'ops-one',
      display_name: 'ops one',
      disabled: false,
    });
    expect(await ok(['agents', 'get', 'ops-one'])).toMatchObject({ agent_id: 'ops-one' });
    expect(await ok(['agents', 'disable', 'ops-one'])).toMatchObject({ disabled: true });
    expect(await ok(['agents', 'list', '--disabled', '--all'])).toMatchObject({
      agents: [expect.objectContaining({ agent_id: 'ops-one' })],
    });
    expect(await ok(['agents', 'enable', 'ops-one'])).toMatchObject({ disabled: false });
    const again = await cli(['agents', 'create', '--display-name', 'dup', '--agent-id', 'ops-one']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/HTTP 409 already_exists/);
    expect((await cli(['agents', 'get', 'no-such-agent'])).code).toBe(3);
  });

  it('list pages by --limit and --cursor, and --all follows next_cursor over several pages', async () => {
    for (let i = 0; i < 5; i++) await newAgent(`paged ${i}`);
    const first = await ok(['agents', 'list', '--limit', '2']);
    expect(first.agents).toHaveLength(2);
    expect(typeof first.next_cursor).toBe('string');
    const second = await ok(['agents', 'list', '--limit', '2', '--cursor', first.next_cursor]);
    expect(second.agents).toHaveLength(2);
    expect(second.agents[0].agent_id > first.agents[1].agent_id).toBe(true);
    const all = await ok(['agents', 'list', '--limit', '2', '--all']);
    expect(all.next_cursor).toBeNull();
    expect(all.agents.length).toBeGreaterThanOrEqual(6);
    const ids = all.agents.map((a: any) => a.agent_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    // A table: a header and one line per agent; the next page is said on stderr.
    const table = await cli(['agents', 'list', '--limit', '2', '--table']);
    expect(table.stdout.split('\n')[0]).toMatch(/^AGENT +NAME +DISABLED +CREATED/);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
    expect(table.stderr).toMatch(/more: add --cursor \S+ for the next page, or --all/);
  });
});

describe('device keys', () => {
  it('issue to a 0600 file (not printed), list, revoke', async () => {
    const agent = await newAgent('keyed');
    const file = join(tmp.dir, 'keyed.device-key');
    const issued = await ok([
      'keys',
      'issue',
      '--agent',
      agent,
      '--label',
      'laptop',
      '--out',
      file,
    ]);
    expect(issued).toMatchObject({ agent_id: agent, label: 'laptop' });
    expect(issued.device_key).toBeUndefined();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = readFileSync(file, 'utf8').trim();
    expect(key.length).toBeGreaterThan(40);
    const second = await ok(['keys', 'issue', '--agent', agent]);
    expect(typeof second.device_key).toBe('string'); // shown once, on stdout
    const listed = await ok(['keys', 'list', '--agent', agent, '--all']);
    expect(listed.keys.map((k: any) => k.key_id)).toEqual([issued.key_id, second.key_id]);
    expect(JSON.stringify(listed)).not.toContain(key);
    expect(await ok(['keys', 'revoke', second.key_id])).toMatchObject({ key_id: second.key_id });
    expect((await ok(['keys', 'list', '--agent', agent])).keys).toHaveLength(1);
    const withRevoked = await ok(['keys', 'list', '--agent', agent, '--include-revoked']);
    expect(withRevoked.keys[1].revoked_at).toEqual(expect.any(String));
    // The agent lists its own keys with its device key.
    expect((await ok(['keys', 'list', '--device-key-file', file])).keys).toHaveLength(1);
  });
});

describe('secrets: operators provision, agents read', () => {
  const VALUE = 'sk-stdin-secret-4f2a9c';
  let agent: string;
  let deviceKeyFile: string;
  beforeAll(async () => {
    agent = await newAgent('provisioned');
    deviceKeyFile = join(tmp.dir, 'provisioned.device-key');
    await ok(['keys', 'issue', '--agent', agent, '--out', deviceKeyFile]);
  });

  it('put reads the value from stdin and never echoes it; the agent reads it back', async () => {
    const res = await cli(['secrets', 'put', 'openai_key', '--agent', agent], `${VALUE}\n`);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ name: 'openai_key', version: 1 });
    expect(res.stdout + res.stderr).not.toContain(VALUE);
    const got = await cli(['secrets', 'get', 'openai_key', '--device-key-file', deviceKeyFile]);
    expect(got).toMatchObject({ code: 0, stdout: VALUE, stderr: '' });
    const json = await cli([
      'secrets',
      'get',
      'openai_key',
      '--device-key-file',
      deviceKeyFile,
      '--json',
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'openai_key', version: 1, value: VALUE });
    // A failing put (cas) names the code, never the value.
    const conflict = await cli(
      ['secrets', 'put', 'openai_key', '--agent', agent, '--cas', '0'],
      VALUE,
    );
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/HTTP 409 failed_precondition/);
    expect(conflict.stdout + conflict.stderr).not.toContain(VALUE);
  });

  it('the bridge key never reads: get needs a device key; empty stdin is refused', async () => {
    const bridge = await cli(['secrets', 'get', 'openai_key']);
    expect(bridge.code).toBe(2);
    expect(bridge.stderr).toMatch(/no device key/);
    const named = await cli(['secrets', 'get', 'openai_key', '--agent', agent]);
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/--agent is refused: the bridge key never reads a value/);
    const empty = await cli(['secrets', 'put', 'empty', '--agent', agent], '');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/the value is empty/);
  });

  it('--value-file, list, metadata, delete, undelete, destroy', async () => {
    const file = join(tmp.dir, 'value.txt');
    writeFileSync(file, 'sk-from-a-file-77\n', { mode: 0o600 });
    expect(
      await ok(['secrets', 'put', 'openai_key', '--agent', agent, '--value-file', file]),
    ).toMatchObject({ version: 2 });
    const got = await cli(['secrets', 'get', 'openai_key', '--device-key-file', deviceKeyFile]);
    expect(got.stdout).toBe('sk-from-a-file-77');
    const list = await ok(['secrets', 'list', '--agent', agent]);
    expect(list.secrets).toEqual([
      expect.objectContaining({ name: 'openai_key', current_version: 2 }),
    ]);
    expect(JSON.stringify(list)).not.toContain('sk-');
    const meta = await ok(['secrets', 'metadata', 'openai_key', '--agent', agent]);
    expect(meta.versions.map((v: any) => v.version)).toEqual([1, 2]);
    expect(await ok(['secrets', 'delete', 'openai_key', '--agent', agent])).toMatchObject({
      versions: [2],
    });
    const gone = await cli([
      'secrets',
      'get',
      'openai_key',
      '--device-key-file',
      deviceKeyFile,
      '--version',
      '2',
    ]);
    expect(gone.code).toBe(3);
    expect(
      await ok(['secrets', 'undelete', 'openai_key', '--agent', agent, '--versions', '2']),
    ).toMatchObject({ versions: [2] });
    expect(
      (await cli(['secrets', 'get', 'openai_key', '--device-key-file', deviceKeyFile])).stdout,
    ).toBe('sk-from-a-file-77');
    const destroyNeedsVersions = await cli(['secrets', 'destroy', 'openai_key', '--agent', agent]);
    expect(destroyNeedsVersions.code).toBe(2);
    expect(
      await ok(['secrets', 'destroy', 'openai_key', '--agent', agent, '--versions', '1']),
    ).toMatchObject({ versions: [1] });
    const table = await cli(['secrets', 'metadata', 'openai_key', '--agent', agent, '--table']);
    expect(table.stdout).toMatch(/^VERSION +CREATED +DELETED +DESTROYED$/m);
    expect(table.stdout, table.stdout).toMatch(/^1 +\S+ +\S+ +true$/m);
  });

  it('shared secrets: put --shared, grant, the agent reads with --shared, ungrant', async () => {
    const res = await cli(['secrets', 'put', 'team_key', '--shared'], 'sk-shared-value-31\n');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).not.toContain('sk-shared-value-31');
    const read = ['secrets', 'get', 'team_key', '--shared', '--device-key-file', deviceKeyFile];
    expect((await cli(read)).code).toBe(3); // not granted: not found
    expect(await ok(['secrets', 'grant', 'team_key', '--agents', agent])).toMatchObject({
      name: 'team_key',
      readers: [agent],
    });
    expect((await cli(read)).stdout).toBe('sk-shared-value-31');
    expect((await ok(['secrets', 'list', '--shared'])).secrets).toEqual([
      expect.objectContaining({ name: 'team_key' }),
    ]);
    expect(await ok(['secrets', 'ungrant', 'team_key', '--agents', agent])).toMatchObject({
      readers: [],
    });
    expect((await cli(read)).code).toBe(3);
  });

  it('an enrolled device reads sealed and signed: get opens the value with its sealing key', async () => {
    const dir = join(tmp.dir, 'enrolled-device');
    expect((await cli(['device', 'keygen', '--out', dir])).code).toBe(0);
    const fingerprint = JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8')).fingerprint;
    const enrollment = await service.post(
      '/device/enrollments/create',
      { agent_id: agent, expected_fingerprint: fingerprint },
      service.bridge,
    );
    expect(enrollment.status).toBe(201);
    const enrolled = await cli([
      'device',
      'enroll',
      '--url',
      service.url,
      '--code',
      enrollment.body.code,
      '--keys',
      dir,
    ]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    await ok(['secrets', 'put', 'sealed_key', '--agent', agent], 'sk-sealed-value-55');
    await ok(['settings', 'set', 'secrets.require_sealed', 'true']);
    await ok(['settings', 'set', 'device.require_signed_requests', 'true']);
    try {
      const got = await cli([
        'secrets',
        'get',
        'sealed_key',
        '--device-key-file',
        join(dir, 'device-key'),
      ]);
      expect(got).toMatchObject({ code: 0, stdout: 'sk-sealed-value-55', stderr: '' });
      // The bare device key of the same agent cannot read in clear any more.
      const bare = await cli(['secrets', 'get', 'sealed_key', '--device-key-file', deviceKeyFile]);
      expect(bare.code).toBe(1);
      expect(bare.stdout + bare.stderr).not.toContain('sk-sealed-value-55');
    } finally {
      await ok(['settings', 'set', 'secrets.require_sealed', 'false']);
      await ok(['settings', 'set', 'device.require_signed_requests', 'false']);
    }
  });

  it('no value ever reached a log line or an error', () => {
    for (const value of [VALUE, 'sk-from-a-file-77', 'sk-shared-value-31', 'sk-sealed-value-55']) {
      expect(service.logs.join('\n')).not.toContain(value);
    }
  });
});
