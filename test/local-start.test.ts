/**
 * `npm start`'s entry point as a real process: first start generates the dev bridge key
 * (0600) and prints its path, never the key; bad configuration refuses to start; a SIGKILL
 * loses no acknowledged write.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startChild, type Child } from './helpers/child.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'functions/lib/local/main.js');

const children: Child[] = [];
const dirs: Array<{ remove(): void }> = [];
afterEach(async () => {
  for (const c of children.splice(0)) await c.stop('SIGKILL');
  for (const d of dirs.splice(0)) d.remove();
});

function start(dataDir: string, env: Record<string, string> = {}): Child {
  const child = startChild(process.execPath, [main], {
    PATH: process.env['PATH'],
    AGENTPACK_DATA_DIR: dataDir,
    PORT: '0',
    ...env,
  });
  children.push(child);
  return child;
}

async function started(child: Child): Promise<string> {
  const line = await child.waitFor(/listening on (http:\/\/[0-9.:]+)/);
  return line.replace('listening on ', '');
}

describe('npm start (local server)', () => {
  it('generates a 0600 dev bridge key on first start, prints its path but never the key, and reuses it', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const first = start(tmp.dir);
    const url = await started(first);
    const file = join(tmp.dir, 'bridge-key');
    await first.waitFor(/curl -s/);
    const key = readFileSync(file, 'utf8').trim();
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.output()).toContain(file);
    expect(first.output()).not.toContain(key);
    const res = await fetch(`${url}/agents/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-agentpack-key': key },
      body: JSON.stringify({ display_name: 'first', agent_id: 'first-agent' }),
    });
    expect(res.status).toBe(201);
    const signing = join(tmp.dir, 'capability-signing-key.jwk');
    expect(statSync(signing).mode & 0o777).toBe(0o600);
    expect(first.output()).toContain(`token mint --key ${signing}`);
    expect(first.output()).not.toContain(JSON.parse(readFileSync(signing, 'utf8')).d);
    const wellKnown = (await (await fetch(`${url}/.well-known/agentpack-identity`)).json()) as any;
    expect(wellKnown.jwks.keys[0].x).toBe(JSON.parse(readFileSync(signing, 'utf8')).x);
    expect(await first.stop('SIGTERM')).toBe(0);

    const second = start(tmp.dir);
    const url2 = await started(second);
    await second.waitFor(/read from/);
    expect(readFileSync(file, 'utf8').trim()).toBe(key);
    const got = await fetch(`${url2}/agents/get`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-agentpack-key': key },
      body: JSON.stringify({ agent_id: 'first-agent' }),
    });
    expect(got.status).toBe(200);
  });

  it('refuses to start with a bridge key shorter than 32 characters, without echoing it', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const child = start(tmp.dir, { AGENTPACK_BRIDGE_KEYS: 'short-secret-key' });
    expect(await child.exited).not.toBe(0);
    expect(child.output()).toContain('shorter than 32');
    expect(child.output()).not.toContain('short-secret-key');
  });

  it('refuses to start when the secrets key file is lost but secrets exist (never a new key over old data)', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const bridge = 'kek-test-bridge-key-0123456789abcdefghijk';
    const child = start(tmp.dir, { AGENTPACK_BRIDGE_KEYS: bridge });
    const url = await started(child);
    const post = (path: string, body: object, headers: Record<string, string>) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    await post(
      '/agents/create',
      { display_name: 'k', agent_id: 'kek-agent' },
      { 'x-agentpack-key': bridge },
    );
    const issued = (await (
      await post('/device/issue', { agent_id: 'kek-agent' }, { 'x-agentpack-key': bridge })
    ).json()) as any;
    const put = await post(
      '/secrets/put',
      { name: 's', value: 'v' },
      { 'x-agentpack-device-key': issued.device_key },
    );
    expect(put.status).toBe(200);
    const kek = join(tmp.dir, 'secrets-kek');
    expect(statSync(kek).mode & 0o777).toBe(0o600);
    await child.stop('SIGTERM');
    rmSync(kek);
    const again = start(tmp.dir, { AGENTPACK_BRIDGE_KEYS: bridge });
    expect(await again.exited).not.toBe(0);
    expect(again.output()).toContain('secrets-kek is missing');
  });

  it('keeps every acknowledged write across a SIGKILL', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const bridge = 'kill-test-bridge-key-0123456789abcdefghij';
    const child = start(tmp.dir, { AGENTPACK_BRIDGE_KEYS: bridge });
    const url = await started(child);
    const acknowledged: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${url}/agents/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-agentpack-key': bridge },
        body: JSON.stringify({ display_name: `n${i}`, agent_id: `agent-${i}` }),
      });
      if (res.status === 201) acknowledged.push(`agent-${i}`);
    }
    await child.stop('SIGKILL');
    const again = start(tmp.dir, { AGENTPACK_BRIDGE_KEYS: bridge });
    const url2 = await started(again);
    for (const id of acknowledged) {
      const res = await fetch(`${url2}/agents/get`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-agentpack-key': bridge },
        body: JSON.stringify({ agent_id: id }),
      });
      expect(res.status, id).toBe(200);
    }
    expect(acknowledged).toHaveLength(20);
  });
});
