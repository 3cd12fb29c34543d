/**
 * Crash safety of the local server (`npm start`'s entry, built, as a real process over SQLite):
 * a write loop with several requests in flight (`/secrets/put` with `cas`, values up to 30 KiB,
 * and `/agents/create`), SIGKILL in the middle of it, restart on the same data dir, and:
 *
 * - every acknowledged write is intact: readable, with the right value and version;
 * - every unacknowledged one is absent or whole: a secret version is in the metadata exactly
 *   when its version document exists, and decrypts to the value that was sent; an agent row is
 *   complete; every change has its audit event and every audit event its change;
 * - the database opens cleanly: the server restarts on it, and SQLite's integrity_check passes,
 *   on the files as the kill left them and after a clean stop.
 *
 * Needs `npm run build` first (it runs functions/lib).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startChild, type Child } from './helpers/child.js';
import { tempDir } from './helpers/temp-dir.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'functions/lib/local/main.js');
const BRIDGE = 'crash-test-bridge-key-0123456789abcdefghij';

const children: Child[] = [];
const dirs: Array<{ remove(): void }> = [];
afterEach(async () => {
  for (const c of children.splice(0)) await c.stop('SIGKILL');
  for (const d of dirs.splice(0)) d.remove();
});

function start(dataDir: string): Child {
  const child = startChild(process.execPath, [main], {
    PATH: process.env['PATH'],
    AGENTPACK_DATA_DIR: dataDir,
    AGENTPACK_BRIDGE_KEYS: BRIDGE,
    PORT: '0',
  });
  children.push(child);
  return child;
}

async function listening(child: Child): Promise<string> {
  const line = await child.waitFor(/listening on (http:\/\/[0-9.:]+)/);
  return line.replace('listening on ', '');
}

async function post(
  url: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

const bridge = { 'x-agentpack-key': BRIDGE };
const AGENT = 'crash-agent';

interface PutOp {
  kind: 'put';
  name: string;
  version: number;
  value: string;
  acked: boolean;
}
interface CreateOp {
  kind: 'create';
  agentId: string;
  displayName: string;
  acked: boolean;
}
type Op = PutOp | CreateOp;

const PUT_WORKERS = 6;
const CREATE_WORKERS = 2;

/** A value of 1 byte to 30 KiB, recognisable by secret and version. */
function valueFor(name: string, version: number): string {
  const size = 1 + (randomBytes(2).readUInt16BE(0) % (30 * 1024));
  const head = `${name}@${version}:`;
  return (
    head +
    randomBytes(Math.ceil(size / 2))
      .toString('hex')
      .slice(0, size)
  );
}

/**
 * Runs the write loop against `url` until `killAfter` writes were acknowledged, then SIGKILLs
 * the server at once, with the other workers' requests still in flight. Returns every write
 * sent, acknowledged or not, and how many were in flight at the kill.
 */
async function writeUntilKilled(
  url: string,
  child: Child,
  deviceKey: string,
  current: Map<string, number>,
  cycle: number,
  killAfter: number,
): Promise<{ ops: Op[]; inFlightAtKill: number }> {
  const ops: Op[] = [];
  let acked = 0;
  let killed = false;
  let inFlightAtKill = -1;
  const inFlight = new Set<Op>();
  const kill = () => {
    if (killed) return;
    killed = true;
    inFlightAtKill = inFlight.size;
    child.proc.kill('SIGKILL');
  };
  const send = async (op: Op, request: () => Promise<{ status: number; text: string }>) => {
    ops.push(op);
    inFlight.add(op);
    try {
      const res = await request();
      inFlight.delete(op);
      const expected = op.kind === 'put' ? 200 : 201;
      if (res.status === expected) {
        // The whole answer arrived: acknowledged, even if the kill was already decided.
        op.acked = true;
        acked++;
        if (acked >= killAfter) kill();
        return true;
      }
      if (killed) return false;
      throw new Error(`${op.kind} answered ${res.status} before the kill: ${res.text}`);
    } catch (error) {
      inFlight.delete(op);
      if (killed) return false; // the connection died with the server: unacknowledged
      throw error;
    }
  };
  const putWorker = async (w: number) => {
    const name = `w${w}`;
    while (!killed) {
      const base = current.get(name) ?? 0;
      const op: PutOp = {
        kind: 'put',
        name,
        version: base + 1,
        value: valueFor(name, base + 1),
        acked: false,
      };
      const ok = await send(op, () =>
        post(
          url,
          '/secrets/put',
          { name, value: op.value, cas: base },
          { 'x-agentpack-device-key': deviceKey },
        ),
      );
      if (ok) current.set(name, base + 1);
    }
  };
  const createWorker = async (w: number) => {
    for (let n = 0; !killed; n++) {
      const agentId = `crash-c${cycle}-w${w}-${n}`;
      const op: CreateOp = {
        kind: 'create',
        agentId,
        displayName: `display ${agentId} ${randomBytes(8).toString('hex')}`,
        acked: false,
      };
      await send(op, () =>
        post(url, '/agents/create', { agent_id: agentId, display_name: op.displayName }, bridge),
      );
    }
  };
  await Promise.all([
    ...Array.from({ length: PUT_WORKERS }, (_, w) => putWorker(w)),
    ...Array.from({ length: CREATE_WORKERS }, (_, w) => createWorker(w)),
  ]);
  return { ops, inFlightAtKill };
}

/** Checks the database files directly: integrity, and that every change has its other half. */
function checkDatabase(file: string): void {
  const db = new Database(file);
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const secrets = db.prepare('SELECT id, data FROM secrets').all() as Array<{
      id: string;
      data: string;
    }>;
    const versions = new Set(
      (db.prepare('SELECT id FROM secret_versions').pluck().all() as string[]).map(String),
    );
    const listed = new Set<string>();
    for (const row of secrets) {
      const doc = JSON.parse(row.data);
      for (const v of doc.versions) {
        const id = `${doc.agent_id}:${doc.name}:${v.version}`;
        listed.add(id);
        // Metadata without its version document: a half-written secret.
        if (!v.destroyed) expect(versions.has(id), `version document of ${id}`).toBe(true);
      }
    }
    // A version document the metadata does not know: the other half-write.
    for (const id of versions) expect(listed.has(id), `metadata of ${id}`).toBe(true);
    const audit = (db.prepare('SELECT data FROM audit_events').pluck().all() as string[]).map((d) =>
      JSON.parse(d),
    );
    const puts = new Set(
      audit
        .filter((e) => e.action === 'secret.put')
        .map((e) => `${e.target.agent_id}:${e.target.secret}:${e.target.version}`),
    );
    // Every committed version was audited in its transaction, and nothing else was.
    expect([...versions].filter((id) => !puts.has(id))).toEqual([]);
    expect([...puts].filter((id) => !versions.has(id))).toEqual([]);
    const agents = new Set(db.prepare('SELECT id FROM agents').pluck().all() as string[]);
    const created = new Set(
      audit.filter((e) => e.action === 'agent.create').map((e) => e.target.agent_id as string),
    );
    expect([...agents].filter((id) => !created.has(id))).toEqual([]);
    expect([...created].filter((id) => !agents.has(id))).toEqual([]);
  } finally {
    db.close();
  }
}

describe('crash safety of the local server', () => {
  it('keeps every acknowledged write and never a half-written one across SIGKILLs mid-write', async () => {
    expect(existsSync(main), 'run npm run build first').toBe(true);
    const tmp = tempDir();
    dirs.push(tmp);
    let child = start(tmp.dir);
    let url = await listening(child);
    expect(
      (await post(url, '/agents/create', { agent_id: AGENT, display_name: 'C' }, bridge)).status,
    ).toBe(201);
    const issued = await post(url, '/device/issue', { agent_id: AGENT }, bridge);
    expect(issued.status).toBe(201);
    const deviceKey = issued.body.device_key as string;
    const device = { 'x-agentpack-device-key': deviceKey };
    // Keep every version, so every acknowledged one stays readable.
    expect(
      (await post(url, '/settings/set', { key: 'secrets.max_versions', value: 100 }, bridge))
        .status,
    ).toBe(200);

    const current = new Map<string, number>();
    /** Every value ever committed, by `name@version`, and every agent by id. */
    const committedValues = new Map<string, string>();
    const committedAgents = new Map<string, string>();
    const cycles = 3;
    let totalInFlight = 0;
    let totalUnacked = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const { ops, inFlightAtKill } = await writeUntilKilled(
        url,
        child,
        deviceKey,
        current,
        cycle,
        40 + cycle * 17,
      );
      expect(await child.exited).toBeNull(); // killed by the signal, not exited
      expect(child.proc.signalCode).toBe('SIGKILL');
      totalInFlight += inFlightAtKill;
      const acked = ops.filter((o) => o.acked);
      const unacked = ops.filter((o) => !o.acked);
      expect(acked.length).toBeGreaterThanOrEqual(40 + cycle * 17);

      // The files as the kill left them open cleanly and hold no half-write.
      if (cycle === cycles - 1) checkDatabase(join(tmp.dir, 'identity.sqlite'));

      child = start(tmp.dir);
      url = await listening(child);

      // Secrets: each worker's acknowledged versions, plus at most its one unacknowledged put.
      for (let w = 0; w < PUT_WORKERS; w++) {
        const name = `w${w}`;
        const mine = ops.filter((o): o is PutOp => o.kind === 'put' && o.name === name);
        for (const op of mine.filter((o) => o.acked)) {
          committedValues.set(`${name}@${op.version}`, op.value);
        }
        const believed = current.get(name) ?? 0;
        const meta = await post(url, '/secrets/metadata', { name }, device);
        if (believed === 0 && meta.status === 404) continue; // nothing ever committed
        expect(meta.status, meta.text).toBe(200);
        const actual = meta.body.current_version as number;
        const pending = mine.find((o) => !o.acked && o.version === believed + 1);
        if (actual === believed + 1) {
          // The unacknowledged put committed: it must be whole, with the value sent.
          expect(pending, `${name}: version ${actual} was never sent`).toBeDefined();
          committedValues.set(`${name}@${actual}`, pending!.value);
          current.set(name, actual);
        } else {
          expect(actual, `${name}: acknowledged ${believed}`).toBe(believed);
        }
        expect(meta.body.versions.map((v: { version: number }) => v.version)).toEqual(
          Array.from({ length: actual }, (_, i) => i + 1),
        );
        for (let version = 1; version <= actual; version++) {
          const got = await post(url, '/secrets/get', { name, version }, device);
          expect(got.status, `${name}@${version}: ${got.text}`).toBe(200);
          expect(got.body.value, `${name}@${version}`).toBe(
            committedValues.get(`${name}@${version}`),
          );
        }
      }

      // Agents: acknowledged ones complete; unacknowledged ones absent or complete.
      for (const op of ops.filter((o): o is CreateOp => o.kind === 'create')) {
        const got = await post(url, '/agents/get', { agent_id: op.agentId }, bridge);
        if (!op.acked && got.status === 404) continue;
        expect(got.status, `${op.agentId} (acked: ${op.acked}): ${got.text}`).toBe(200);
        expect(got.body).toEqual({
          agent_id: op.agentId,
          display_name: op.displayName,
          disabled: false,
          created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        });
        committedAgents.set(op.agentId, op.displayName);
      }
      totalUnacked += unacked.length;
    }
    // The kills did land with requests in flight.
    expect(totalInFlight).toBeGreaterThan(0);
    expect(totalUnacked).toBeGreaterThan(0);

    // Everything committed in earlier cycles is still there after the later kills.
    for (const [key, value] of committedValues) {
      const [name, version] = key.split('@') as [string, string];
      const got = await post(url, '/secrets/get', { name, version: Number(version) }, device);
      expect(got.body?.value, key).toBe(value);
    }
    for (const [agentId, displayName] of committedAgents) {
      const got = await post(url, '/agents/get', { agent_id: agentId }, bridge);
      expect(got.body?.display_name, agentId).toBe(displayName);
    }

    // A clean stop, then the files once more.
    expect(await child.stop('SIGTERM')).toBe(0);
    checkDatabase(join(tmp.dir, 'identity.sqlite'));
  });
});
