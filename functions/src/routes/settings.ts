/** Routes under /settings: operator tunables, bridge only. */
import { settingsListRequest, settingsSetRequest } from '@agentpack-identity/protocol';
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
  handle: ({ deps }) => listSettings(deps),
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
  handle: ({ deps, principal, input }) =>
    setSetting(deps, requirePrincipal(principal), input.key, input.value),
});
