/**
 * Proof of encryption at rest: secrets written through the API, then the raw SQLite files and
 * the Firestore emulator's stored documents are searched for every value, every data key (as
 * the keyring saw them, raw and encoded) and every device key: none may appear in clear.
 */
import type { Server } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localKeyring } from '../functions/src/adapters/local-keyring.js';
import { createApp } from '../functions/src/app.js';
import { loadConfig } from '../functions/src/config/config.js';
import { startServer } from '../functions/src/local/server.js';
import type { Keyring } from '../functions/src/ports/keyring.js';
import type { Store } from '../functions/src/ports/store.js';
import { startFirestoreEmulator, type FirestoreEmulator } from './helpers/firestore-emulator.js';
import { capturingLogger } from './helpers/logs.js';
import { BRIDGE_KEY } from './helpers/service.js';
import { tempDir } from './helpers/temp-dir.js';

/** A real local keyring that remembers every data key it wraps (test-only instrument). */
function recordingKeyring(): { keyring: Keyring; dataKeys: Buffer[] } {
  const inner = localKeyring(Buffer.alloc(32, 9));
  const dataKeys: Buffer[] = [];
  return {
    dataKeys,
    keyring: {
      primaryRef: () => inner.primaryRef(),
      wrap: async (dataKey, aad) => {
        dataKeys.push(Buffer.from(dataKey));
        return inner.wrap(dataKey, aad);
      },
      unwrap: (w, r, aad) => inner.unwrap(w, r, aad),
    },
  };
}

const VALUES = ['sk-at-rest-value-1-abcdef', 'pässwörd-ünïcode-2', 'x'.repeat(5000) + 'tail-3'];

async function exercise(store: Store | undefined, dataDir: string) {
  const { keyring, dataKeys } = recordingKeyring();
  const config = loadConfig(
    { AGENTPACK_DATA_DIR: dataDir, AGENTPACK_BRIDGE_KEYS: BRIDGE_KEY },
    { store: 'sqlite' },
  );
  const app = await createApp({
    config,
    logger: capturingLogger().logger,
    keyring,
    ...(store === undefined ? {} : { store }),
  });
  const { server, url } = await startServer(app.handler, capturingLogger().logger, {
    port: 0,
    host: '127.0.0.1',
  });
  const post = async (path: string, body: object, headers: Record<string, string>) => {
    const res = await fetch(url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return (await res.json()) as any;
  };
  await post(
    '/agents/create',
    { display_name: 'R', agent_id: 'rest-agent' },
    { 'x-agentpack-key': BRIDGE_KEY },
  );
  const deviceKey = (
    await post('/device/issue', { agent_id: 'rest-agent' }, { 'x-agentpack-key': BRIDGE_KEY })
  ).device_key as string;
  for (const [i, value] of VALUES.entries()) {
    await post('/secrets/put', { name: `s${i}`, value }, { 'x-agentpack-device-key': deviceKey });
    expect(
      (await post('/secrets/get', { name: `s${i}` }, { 'x-agentpack-device-key': deviceKey }))
        .value,
    ).toBe(value);
  }
  await new Promise<void>((r) => {
    server.close(() => r());
    (server as Server).closeAllConnections();
  });
  expect(dataKeys.length).toBe(VALUES.length);
  return { app, dataKeys, deviceKey };
}

function needles(dataKeys: Buffer[], deviceKey: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [['device key', Buffer.from(deviceKey)]];
  for (const v of VALUES) out.push([`value ${v.slice(0, 12)}`, Buffer.from(v, 'utf8')]);
  for (const k of dataKeys) {
    out.push(['data key (raw)', k]);
    out.push(['data key (base64url)', Buffer.from(k.toString('base64url'))]);
    out.push(['data key (base64)', Buffer.from(k.toString('base64'))]);
    out.push(['data key (hex)', Buffer.from(k.toString('hex'))]);
  }
  return out;
}

let emulator: FirestoreEmulator | undefined;
afterAll(async () => {
  await emulator?.stop();
});

describe('nothing in clear at rest', () => {
  it('SQLite: no value, data key or device key in the database files', async () => {
    const tmp = tempDir();
    const { app, dataKeys, deviceKey } = await exercise(undefined, tmp.dir);
    await app.close();
    const files = readdirSync(tmp.dir).filter((f) => f.startsWith('identity.sqlite'));
    expect(files.length).toBeGreaterThan(0);
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(tmp.dir, f))));
    for (const [what, needle] of needles(dataKeys, deviceKey))
      expect(bytes.includes(needle), what).toBe(false);
    tmp.remove();
  });

  it("Firestore: no value, data key or device key in the emulator's stored documents", async () => {
    emulator = await startFirestoreEmulator();
    const tmp = tempDir();
    const { app, dataKeys, deviceKey } = await exercise(emulator.newStore(), tmp.dir);
    const dump = Buffer.from(emulator.dump());
    expect(dump.includes(Buffer.from('rest-agent'))).toBe(true); // the dump really holds our data
    for (const [what, needle] of needles(dataKeys, deviceKey))
      expect(dump.includes(needle), what).toBe(false);
    await app.close();
    tmp.remove();
  });
});
