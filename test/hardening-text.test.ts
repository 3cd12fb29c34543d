/**
 * Hardening 0.2, "Text fields" (finding 9): every free-text field — `display_name`, `label`,
 * `task` — refuses Unicode format characters (Cf: bidi overrides, zero-width characters, the
 * BOM) and line and paragraph separators (Zl, Zp), as well as control characters (Cc): 400
 * `invalid_argument` naming the field, nothing written. Ordinary non-ASCII text is accepted
 * and kept as sent. One schema builder (`textField` in packages/protocol/src/requests/fields.ts) holds the rule.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDeviceKeys } from '@agentpack-identity/protocol';
import { startTestService, type ApiResult, type TestService } from './helpers/service.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/** The characters the finding names, then more of the same categories. */
const REFUSED: ReadonlyArray<[string, string]> = [
  ['U+202E right-to-left override (Cf)', '\u202e'],
  ['U+200B zero width space (Cf)', '\u200b'],
  ['U+2028 line separator (Zl)', '\u2028'],
  ['U+2029 paragraph separator (Zp)', '\u2029'],
  ['U+FEFF byte order mark (Cf)', '\ufeff'],
  ['U+200D zero width joiner (Cf)', '\u200d'],
  ['U+2066 left-to-right isolate (Cf)', '\u2066'],
  ['U+00AD soft hyphen (Cf)', '\u00ad'],
  ['U+0007 bell (Cc)', '\u0007'],
];
const ACCEPTED = ['Zoë 東京 ✓', 'café 😀 naïve', 'Ελληνικά e\u0301'];

let svc: TestService;
let deviceKey: string;
let seq = 0;

beforeAll(async () => {
  svc = await startTestService();
  expect(
    (await svc.post('/agents/create', { display_name: 'A', agent_id: 'agent-a' }, svc.bridge))
      .status,
  ).toBe(201);
  deviceKey = (await svc.post('/device/issue', { agent_id: 'agent-a' }, svc.bridge)).body
    .device_key;
});
afterAll(async () => {
  await svc.close();
});

/** One way to send each text field, and how to tell the text was stored as sent. */
interface Field {
  name: 'display_name' | 'label' | 'task';
  route: string;
  /** Makes what `count` sends will need (enrollment codes), before anything is measured. */
  prepare?(count: number): Promise<void>;
  send(text: string): Promise<ApiResult>;
  stored?(res: ApiResult): Promise<unknown>;
}

/** Unused enrollment codes for the /device/enroll sends. */
const codes: string[] = [];

const FIELDS: Field[] = [
  {
    name: 'display_name',
    route: '/agents/create',
    send: (text) =>
      svc.post('/agents/create', { display_name: text, agent_id: `agent-t${++seq}` }, svc.bridge),
    stored: async (res) =>
      (await svc.post('/agents/get', { agent_id: res.body.agent_id }, svc.bridge)).body
        .display_name,
  },
  {
    name: 'label',
    route: '/device/issue',
    send: (text) => svc.post('/device/issue', { agent_id: 'agent-a', label: text }, svc.bridge),
    stored: async (res) => res.body.label,
  },
  {
    name: 'label',
    route: '/device/enrollments/create',
    send: (text) =>
      svc.post('/device/enrollments/create', { agent_id: 'agent-a', label: text }, svc.bridge),
  },
  {
    name: 'label',
    route: '/device/enroll',
    prepare: async (count) => {
      for (let i = 0; i < count; i++) {
        codes.push(
          (await svc.post('/device/enrollments/create', { agent_id: 'agent-a' }, svc.bridge)).body
            .code,
        );
      }
    },
    send: async (text) => {
      const keys = generateDeviceKeys();
      return svc.post('/device/enroll', {
        code: codes.shift(),
        sealing_public_key: b64(keys.sealing.publicKey),
        signing_public_key: b64(keys.signing.publicKey),
        label: text,
      });
    },
    stored: async (res) => res.body.label,
  },
  {
    name: 'task',
    route: '/runs/spawn',
    send: (text) =>
      svc.post(
        '/runs/spawn',
        {
          task: text,
          scope: ['agents/get'],
          ttl_seconds: 60,
          public_key: b64(generateDeviceKeys().signing.publicKey),
        },
        svc.device(deviceKey),
      ),
  },
];

describe('text fields refuse format characters and separators', () => {
  for (const field of FIELDS) {
    for (const [what, ch] of REFUSED) {
      it(`${field.route} ${field.name}: refuses ${what}, inside or at either end`, async () => {
        const texts = [`Zoë${ch}evil`, `${ch}Zoë`, `Zoë${ch}`];
        await field.prepare?.(texts.length);
        const before = (await svc.store.auditEvents(100_000)).length;
        for (const text of texts) {
          const res = await field.send(text);
          expect(res.status, JSON.stringify(text)).toBe(400);
          expect(res.body.error.code).toBe('invalid_argument');
          expect(res.body.error.details.field).toBe(field.name);
          expect(res.body.error.message).toContain(field.name);
          expect(res.body.error.message).toMatch(/format characters/);
          expect(res.text).not.toContain('Zoë');
        }
        // Refused before the handler: nothing was written or audited.
        expect((await svc.store.auditEvents(100_000)).length).toBe(before);
      });
    }
    it(`${field.route} ${field.name}: accepts ordinary non-ASCII text, kept as sent`, async () => {
      await field.prepare?.(ACCEPTED.length);
      for (const text of ACCEPTED) {
        const res = await field.send(text);
        expect(res.status, `${JSON.stringify(text)}: ${res.text}`).toBe(201);
        if (field.stored !== undefined) expect(await field.stored(res)).toBe(text);
      }
    });
  }

  it('has the rule in one place: no route or request file spells its own Unicode class for text', () => {
    const dirs = ['functions/src/routes', 'packages/protocol/src/requests'].map((d) =>
      join(root, d),
    );
    const files = dirs.flatMap((dir) => readdirSync(dir).map((f) => join(dir, f)));
    const fields = join(root, 'packages/protocol/src/requests/fields.ts');
    expect(files).toContain(fields);
    const copies = files
      .filter((f) => f.endsWith('.ts') && f !== fields)
      .filter((f) => /\\p\{(C|Z)/.test(readFileSync(f, 'utf8')));
    expect(copies).toEqual([]);
    expect(readFileSync(fields, 'utf8')).toMatch(/\\p\{Cf\}/);
  });
});
