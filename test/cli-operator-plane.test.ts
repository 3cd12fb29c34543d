/**
 * The rest of the operator plane from the CLI, as processes against the real service:
 * delegations (an agent creates one with its device key; the operator lists and revokes),
 * runs (spawned with `run spawn`, listed and revoked), the audit log (query paged, and `audit
 * tail` following new events once each until SIGINT ends it with exit 0), settings, and
 * retire (confirmed twice; the id is then gone for good). Needs the CLI built.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLiveProcesses } from './helpers/cli-process.js';
import { operatorHome, runCli, startCli } from './helpers/cli-operator.js';
import { BRIDGE_KEY, startTestService, type TestService } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

afterEach(killLiveProcesses);
const tmp = tempDir('agentpack-cli-plane-');
let service: TestService;
let home: ReturnType<typeof operatorHome>;
let env: Record<string, string>;
beforeAll(async () => {
  service = await startTestService();
  home = operatorHome(join(tmp.dir, 'home'), BRIDGE_KEY);
  env = home.env({ AGENTPACK_URL: service.url, AGENTPACK_BRIDGE_KEY_FILE: home.bridgeKeyFile });
});
afterAll(async () => {
  await service.close();
  tmp.remove();
});

const cli = (args: string[], input?: string) =>
  runCli(args, env, input === undefined ? {} : { input });

async function ok(args: string[], input?: string): Promise<any> {
  const res = await cli(args, input);
  expect(res.code, `${args.join(' ')}\n${res.stderr}`).toBe(0);
  return res.stdout.trim() === '' ? null : JSON.parse(res.stdout);
}

/** A new agent and its device key file. */
async function agentWithKey(name: string): Promise<{ id: string; keyFile: string }> {
  const id = (await ok(['agents', 'create', '--display-name', name])).agent_id as string;
  const keyFile = join(tmp.dir, `${id}.device-key`);
  await ok(['keys', 'issue', '--agent', id, '--out', keyFile]);
  return { id, keyFile };
}

describe('delegations', () => {
  it('an agent delegates with its device key; the operator lists and revokes', async () => {
    const a = await agentWithKey('delegator');
    const b = await agentWithKey('delegate');
    const bridgeOnly = await cli([
      'delegations',
      'create',
      '--to',
      b.id,
      '--scope',
      'secrets/get',
      '--ttl',
      '600',
    ]);
    expect(bridgeOnly.code).toBe(2);
    expect(bridgeOnly.stderr).toMatch(/no device key/);
    const made = await ok([
      'delegations',
      'create',
      '--device-key-file',
      a.keyFile,
      '--to',
      b.id,
      '--scope',
      'secrets/get:openai_key',
      '--ttl',
      '600',
    ]);
    expect(made).toMatchObject({ from_agent: a.id, to_agent: b.id });
    const from = await ok(['delegations', 'list', '--agent', a.id, '--direction', 'from']);
    expect(from.delegations.map((d: any) => d.delegation_id)).toEqual([made.delegation_id]);
    const to = await ok([
      'delegations',
      'list',
      '--device-key-file',
      b.keyFile,
      '--direction',
      'to',
    ]);
    expect(to.delegations).toHaveLength(1);
    expect(await ok(['delegations', 'revoke', made.delegation_id])).toMatchObject({
      delegation_id: made.delegation_id,
    });
    expect((await ok(['delegations', 'list', '--agent', a.id])).delegations).toHaveLength(0);
    const inactive = await ok(['delegations', 'list', '--agent', a.id, '--include-inactive']);
    expect(inactive.delegations[0].revoked_at).toEqual(expect.any(String));
    expect(
      (await cli(['delegations', 'list', '--agent', a.id, '--direction', 'sideways'])).code,
    ).toBe(2);
  });
});

describe('runs', () => {
  it('lists an agent’s runs and revokes one with its subtree', async () => {
    const a = await agentWithKey('runner');
    const dirs = ['r1', 'r2', 'r3'].map((d) => join(tmp.dir, `${a.id}-${d}`));
    const ids: string[] = [];
    for (const dir of dirs) {
      const res = await cli([
        'run',
        'spawn',
        '--url',
        service.url,
        '--device-key-file',
        a.keyFile,
        '--task',
        'a task',
        '--scope',
        'secrets/get',
        '--ttl',
        '300',
        '--out',
        dir,
      ]);
      expect(res.code, res.stderr).toBe(0);
      ids.push(JSON.parse(res.stdout).run_id);
    }
    const all = await ok(['runs', 'list', '--agent', a.id, '--limit', '2', '--all']);
    expect(all.runs.map((r: any) => r.run_id).sort()).toEqual([...ids].sort());
    expect(all.runs[0]).toMatchObject({ agent_id: a.id, task: 'a task', status: 'active' });
    expect(await ok(['runs', 'revoke', ids[0]!])).toMatchObject({
      run_id: ids[0],
      revoked: [ids[0]],
    });
    const ended = await ok(['runs', 'list', '--agent', a.id, '--status', 'ended']);
    expect(ended.runs.map((r: any) => r.run_id)).toEqual([ids[0]]);
    const own = await ok(['runs', 'list', '--device-key-file', a.keyFile, '--status', 'active']);
    expect(own.runs).toHaveLength(2);
    const table = await cli(['runs', 'list', '--agent', a.id, '--table']);
    expect(table.stdout).toMatch(/^RUN +TASK +STATUS +PARENT +CREATED +EXPIRES$/m);
  });
});

describe('audit', () => {
  it('query filters by agent and action, and pages', async () => {
    const a = await agentWithKey('audited');
    await ok(['secrets', 'put', 'k1', '--agent', a.id], 'sk-audit-value-1');
    await ok(['keys', 'issue', '--agent', a.id]);
    const events = await ok(['audit', 'query', '--agent', a.id, '--limit', '1', '--all']);
    const actions = events.events.map((e: any) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['agent.create', 'device_key.issue']));
    expect(events.next_cursor).toBeNull();
    const issues = await ok(['audit', 'query', '--agent', a.id, '--action', 'device_key.issue']);
    expect(issues.events).toHaveLength(2);
    expect(JSON.stringify(events)).not.toContain('sk-audit-value-1');
    const table = await cli(['audit', 'query', '--agent', a.id, '--table']);
    expect(table.stdout).toMatch(/^AT +CATEGORY +ACTION +ACTOR +TARGET/m);
  });

  it('tail prints each new event once as NDJSON and stops cleanly on SIGINT', async () => {
    const a = await agentWithKey('tailed');
    const tail = startCli(['audit', 'tail', '--agent', a.id, '--interval', '1'], env);
    await new Promise((r) => setTimeout(r, 1500)); // its first poll: nothing new yet
    await ok(['keys', 'issue', '--agent', a.id, '--label', 'one']);
    await tail.waitFor(/"device_key\.issue"/);
    await ok(['agents', 'disable', a.id]);
    await tail.waitFor(/"agent\.disable"/);
    await new Promise((r) => setTimeout(r, 2500)); // a few more polls: no repeats
    tail.child.kill('SIGINT');
    expect(await tail.exited).toBe(0);
    const lines = tail
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const ids = lines.map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(lines.map((e) => e.action)).toEqual(['device_key.issue', 'agent.disable']);
    expect(lines.every((e) => e.at >= lines[0].at)).toBe(true);
    expect(tail.stderr()).toBe('');
  });
});

describe('settings', () => {
  it('list and set', async () => {
    const list = await ok(['settings', 'list']);
    expect(list.settings).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: 'secrets.max_versions' })]),
    );
    const set = await ok(['settings', 'set', 'secrets.max_versions', '12']);
    expect(set).toMatchObject({ key: 'secrets.max_versions', value: 12 });
    const bad = await cli(['settings', 'set', 'no.such.setting', '1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/HTTP 400 invalid_argument/);
    const table = await cli(['settings', 'list', '--table']);
    expect(table.stdout).toMatch(/^secrets\.max_versions +12 /m);
  });
});

describe('retire', () => {
  it('ends an agent for good: confirmed twice, keys and secrets gone, the id never again', async () => {
    const a = await agentWithKey('retiree');
    await ok(['secrets', 'put', 'k', '--agent', a.id], 'sk-retired-value');
    const retired = await ok(['agents', 'retire', a.id, '--confirm', a.id]);
    expect(retired).toMatchObject({ agent_id: a.id, retired_at: expect.any(String) });
    expect(retired.destroyed_versions).toBe(1);
    expect(await ok(['agents', 'get', a.id])).toMatchObject({
      disabled: true,
      retired_at: expect.any(String),
    });
    const enable = await cli(['agents', 'enable', a.id]);
    expect(enable.code).toBe(1);
    expect(enable.stderr).toMatch(/HTTP 409/);
    const recreate = await cli(['agents', 'create', '--display-name', 'again', '--agent-id', a.id]);
    expect(recreate.stderr).toMatch(/HTTP 409 already_exists/);
    const read = await cli(['secrets', 'get', 'k', '--device-key-file', a.keyFile]);
    expect(read.code).toBe(1);
    expect(read.stdout).toBe('');
    // Again: idempotent.
    expect(await ok(['agents', 'retire', a.id, '--confirm', a.id])).toMatchObject({
      agent_id: a.id,
    });
  });
});
