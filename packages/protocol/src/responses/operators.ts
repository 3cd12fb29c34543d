/** Answers of the bridge-only routes: settings and the token ledger. */
import { z } from 'zod';
import { agentIdField } from '../requests/fields.js';
import { timeField } from './fields.js';

/** A setting's value: every allow-listed setting is a number or a boolean. */
export const settingValue = z.union([z.number(), z.boolean()]);

/** `/settings/list`: every allow-listed key with its value, default and description. */
export const settingsListResponse = z
  .strictObject({
    settings: z.array(
      z
        .strictObject({
          key: z.string(),
          value: settingValue,
          default: settingValue,
          description: z.string(),
        })
        .meta({ id: 'Setting' }),
    ),
  })
  .meta({ id: 'SettingList' });

/** `/settings/set`: the new value and the one it replaced. */
export const settingsSetResponse = z
  .strictObject({ key: z.string(), value: settingValue, previous: settingValue })
  .meta({ id: 'SettingChange' });

/** `/tokens/register` (201): the ledger entry of a minted capability token, never the token. */
export const tokensRegisterResponse = z
  .strictObject({
    jti: z.string(),
    sub: agentIdField,
    scope: z.array(z.string()),
    iat: z.number().int(),
    exp: z.number().int(),
    kid: z.string(),
    registered_at: timeField,
  })
  .meta({ id: 'TokenLedgerEntry' });
