/** Requests of the secret routes. */
import { z } from 'zod';
import { secretNameField, versionField, versionsField } from './fields.js';

/** `cas`: the version the caller last saw (0: the secret must not exist yet). */
export const secretsPutRequest = z.strictObject({
  name: secretNameField,
  value: z.string(),
  cas: z.number().int().nonnegative().optional(),
});

export const secretsGetRequest = z.strictObject({
  name: secretNameField,
  version: versionField.optional(),
  seal: z.boolean().optional(),
});

export const secretsListRequest = z.strictObject({});

export const secretsMetadataRequest = z.strictObject({ name: secretNameField });

/** `/secrets/delete` and `/secrets/undelete`: default, the current version. */
export const secretsChangeRequest = z.strictObject({
  name: secretNameField,
  versions: versionsField.optional(),
});

/** `/secrets/destroy`: permanent, so the versions are named. */
export const secretsDestroyRequest = z.strictObject({
  name: secretNameField,
  versions: versionsField,
});

export const secretsResolveRequest = z.strictObject({
  refs: z.array(z.string().max(300)).min(1).max(100),
  seal: z.boolean().optional(),
});
