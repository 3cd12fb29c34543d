/**
 * Routes under /settings: operator tunables, bridge only. Every allow-listed setting's value is
 * a number or a boolean (core/settings.ts SETTINGS, each checked by its schema), which the core
 * types `unknown`: the answers are typed as the response schemas say.
 */
import type { z } from 'zod';
import {
  settingsListRequest,
  settingsListResponse,
  settingsSetRequest,
  settingsSetResponse,
} from '@agentpack-identity/protocol';
import { listSettings, setSetting } from '../core/settings.js';
import { defineRoute, requirePrincipal } from './route.js';

/** POST /settings/list: every allow-listed key with value, default and description. */
export const settingsList = defineRoute({
  method: 'POST',
  path: '/settings/list',
  rpc: 'settings/list',
  policy: ['bridge'],
  agentScoped: false,
  status: 200,
  input: settingsListRequest,
  output: settingsListResponse,
  handle: ({ deps }) => listSettings(deps) as Promise<z.input<typeof settingsListResponse>>,
});

/** POST /settings/set: one allow-listed key, its value checked by its own schema. */
export const settingsSet = defineRoute({
  method: 'POST',
  path: '/settings/set',
  rpc: 'settings/set',
  policy: ['bridge'],
  agentScoped: false,
  status: 200,
  input: settingsSetRequest,
  output: settingsSetResponse,
  handle: ({ deps, principal, input }) =>
    setSetting(deps, requirePrincipal(principal), input.key, input.value) as Promise<
      z.input<typeof settingsSetResponse>
    >,
});
