/** Answers of the secret routes: never a value except from `/secrets/get` and `/secrets/resolve`. */
import { z } from 'zod';
import { SHARED_OWNER } from '../grammar.js';
import { agentIdField, secretNameField } from '../requests/fields.js';
import { base64urlField, timeField, versionNumber } from './fields.js';

/** `/secrets/put`: the version just written. */
export const secretsPutResponse = z
  .strictObject({ name: secretNameField, version: versionNumber, created_at: timeField })
  .meta({ id: 'SecretVersionWritten' });

/** The value in clear (`value`), or sealed to the caller's pinned key (`sealed`). */
const clear = { value: z.string() };
const sealed = {
  sealed: base64urlField.meta({
    description:
      "base64url of libsodium's crypto_box_seal of the UTF-8 value, to the caller's pinned sealing key",
  }),
};

const secretRead = {
  name: secretNameField,
  /** Present when the secret read is a shared one. */
  owner: z.literal(SHARED_OWNER).optional(),
  version: versionNumber,
  created_at: timeField,
};

/** `/secrets/get`: one version, in clear or sealed (`seal: true`). */
export const secretsGetResponse = z
  .union([
    z.strictObject({ ...secretRead, ...clear }).meta({ id: 'SecretValue' }),
    z.strictObject({ ...secretRead, ...sealed }).meta({ id: 'SealedSecretValue' }),
  ])
  .meta({ id: 'SecretRead' });

/** `/secrets/list`: names and metadata, never values, sorted by name. */
export const secretsListResponse = z
  .strictObject({
    secrets: z.array(
      z
        .strictObject({
          name: secretNameField,
          current_version: versionNumber,
          created_at: timeField,
          updated_at: timeField,
          brokered: z.boolean(),
        })
        .meta({ id: 'SecretSummary' }),
    ),
  })
  .meta({ id: 'SecretList' });

/** The state of one kept version. */
export const secretVersionState = z
  .strictObject({
    version: versionNumber,
    created_at: timeField,
    deleted_at: timeField.nullable(),
    destroyed: z.boolean(),
  })
  .meta({ id: 'SecretVersionState' });

/** `/secrets/metadata`: every kept version's state; `readers` only for a shared secret. */
export const secretsMetadataResponse = z
  .strictObject({
    name: secretNameField,
    current_version: versionNumber,
    max_versions: versionNumber,
    created_at: timeField,
    updated_at: timeField,
    versions: z.array(secretVersionState),
    brokered: z.boolean(),
    readers: z.array(agentIdField).optional(),
  })
  .meta({ id: 'SecretMetadata' });

/** `/secrets/delete`, `/secrets/undelete`, `/secrets/destroy`: the versions named, sorted. */
export const secretsVersionsResponse = z
  .strictObject({ name: secretNameField, versions: z.array(versionNumber) })
  .meta({ id: 'SecretVersionsChanged' });

/** Where a resolved value came from: the agent's own secret or a shared one. */
export const SECRET_SOURCES = ['agent', 'shared'] as const;

const resolved = {
  ref: z.string(),
  version: versionNumber,
  source: z.enum(SECRET_SOURCES),
};

/** `/secrets/resolve`: one value per reference, in order. */
export const secretsResolveResponse = z
  .strictObject({
    values: z.array(
      z.union([
        z.strictObject({ ...resolved, ...clear }).meta({ id: 'ResolvedValue' }),
        z.strictObject({ ...resolved, ...sealed }).meta({ id: 'ResolvedSealedValue' }),
      ]),
    ),
  })
  .meta({ id: 'ResolvedSecrets' });

/** `/secrets/grant` and `/secrets/ungrant`: the readers after the change, sorted. */
export const secretsGrantResponse = z
  .strictObject({ name: secretNameField, readers: z.array(agentIdField) })
  .meta({ id: 'SharedSecretReaders' });
