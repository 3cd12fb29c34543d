/**
 * Operator tunables. The allow-list lives here, in code: each key has a schema with bounds, a
 * default and a description. A change is read on the next request (no cache) and audited with
 * its old and new values.
 */
import { z } from 'zod';
import { rfc3339 } from '../ports/clock.js';
import type { StoreReader } from '../ports/store.js';
import type { CoreDeps } from './deps.js';
import { actorOf } from './audit.js';
import { ApiError } from './errors.js';
import type { Principal } from './principal.js';

/** Hard ceiling of a delegation's life (7 days): the setting can only be set below it. */
export const DELEGATION_TTL_CEILING_SECONDS = 7 * 24 * 3600;

/** Hard ceiling of a device key's life (one year). */
export const DEVICE_KEY_TTL_CEILING_SECONDS = 365 * 24 * 3600;

interface SettingSpec<T> {
  schema: z.ZodType<T>;
  default: T;
  description: string;
}

function setting<T>(spec: SettingSpec<T>): SettingSpec<T> {
  return spec;
}

export const SETTINGS = {
  'delegation.max_ttl_seconds': setting({
    schema: z.number().int().min(60).max(DELEGATION_TTL_CEILING_SECONDS),
    default: 3600,
    description: `Longest ttl_seconds a delegation may ask for (60 to ${DELEGATION_TTL_CEILING_SECONDS}).`,
  }),
  'device_key.max_ttl_seconds': setting({
    schema: z.number().int().min(60).max(DEVICE_KEY_TTL_CEILING_SECONDS),
    default: DEVICE_KEY_TTL_CEILING_SECONDS,
    description: `Longest ttl_seconds a device key may ask for (60 to ${DEVICE_KEY_TTL_CEILING_SECONDS}).`,
  }),
  'secrets.require_sealed': setting({
    schema: z.boolean(),
    default: false,
    description:
      'When true, every device-key read of a secret must be sealed to the device; clear reads and capability tokens are refused (403).',
  }),
  'device.require_signed_requests': setting({
    schema: z.boolean(),
    default: false,
    description:
      "When true, an enrolled device's request without a valid signature is refused (401): its device key alone is useless.",
  }),
  'runs.max_ttl_seconds': setting({
    schema: z
      .number()
      .int()
      .min(10)
      .max(24 * 3600),
    default: 900,
    description:
      'Longest ttl_seconds a run may ask for (10 to 86400); a child never outlives its parent.',
  }),
  'runs.max_depth': setting({
    schema: z.number().int().min(1).max(16),
    default: 4,
    description: 'Deepest a tree of runs may grow, the root being depth 1 (1 to 16).',
  }),
  'runs.max_active_per_agent': setting({
    schema: z.number().int().min(1).max(100_000),
    default: 1000,
    description:
      'Most live (unended, unexpired) runs one agent may hold; a spawn beyond it is 429 (1 to 100000).',
  }),
  'delegations.max_active_per_agent': setting({
    schema: z.number().int().min(1).max(100_000),
    default: 1000,
    description:
      'Most live (unrevoked, unexpired) delegations from one agent; one more is 429 (1 to 100000).',
  }),
  'secrets.max_versions': setting({
    schema: z.number().int().min(1).max(100),
    default: 10,
    description:
      'How many versions of a secret are kept; older ones are pruned, oldest first (1 to 100).',
  }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
export type SettingValue<K extends SettingKey> = (typeof SETTINGS)[K]['default'];

export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key);
}

/**
 * The current value of a setting: the stored one when it still passes its schema, else the
 * default (a value stored by an older version with wider bounds never escapes today's bounds).
 */
export async function readSetting<K extends SettingKey>(
  reader: StoreReader,
  key: K,
): Promise<SettingValue<K>> {
  const doc = await reader.get('settings', key);
  const spec = SETTINGS[key] as SettingSpec<SettingValue<K>>;
  if (doc === null) return spec.default;
  const parsed = spec.schema.safeParse(doc.value);
  return parsed.success ? parsed.data : spec.default;
}

export interface SettingView {
  key: string;
  value: unknown;
  default: unknown;
  description: string;
}

/** Every allow-listed setting with its current value. */
export async function listSettings(deps: CoreDeps): Promise<{ settings: SettingView[] }> {
  const settings: SettingView[] = [];
  for (const key of SETTING_KEYS) {
    settings.push({
      key,
      value: await readSetting(deps.store, key),
      default: SETTINGS[key].default,
      description: SETTINGS[key].description,
    });
  }
  return { settings };
}

/** Sets an allow-listed setting after checking the value against its own schema. */
export async function setSetting(
  deps: CoreDeps,
  principal: Principal,
  key: string,
  value: unknown,
): Promise<{ key: string; value: unknown; previous: unknown }> {
  if (!isSettingKey(key)) {
    throw new ApiError('invalid_argument', 'not an allow-listed setting', {
      allowed: SETTING_KEYS,
    });
  }
  const parsed = (SETTINGS[key].schema as z.ZodType<number | boolean>).safeParse(value);
  if (!parsed.success) {
    throw new ApiError(
      'invalid_argument',
      `value: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
      {
        field: 'value',
        setting: key,
      },
    );
  }
  return deps.store.transact(async (tx) => {
    const previous = await readSetting(tx, key);
    const at = rfc3339(deps.clock.now());
    tx.set('settings', key, { key, value: parsed.data, updated_at: at });
    tx.audit({
      category: 'settings',
      action: 'setting.set',
      actor: actorOf(principal),
      target: { setting: key },
      at,
      details: { previous, value: parsed.data },
    });
    return { key, value: parsed.data, previous };
  });
}
