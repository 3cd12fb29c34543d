/**
 * The response schemas of every route, with zod: what the service answers on success (strict:
 * a field it never sends is refused) and the error object of every failure. The service's route
 * table names one per route, the OpenAPI document is generated from them, and a client types its
 * answers with `z.output<typeof ...>` of the same schema.
 */
export * from './agents.js';
export * from './device.js';
export * from './errors.js';
export * from './federation.js';
export * from './fields.js';
export * from './lists.js';
export * from './operators.js';
export * from './public.js';
export * from './runs.js';
export * from './secrets.js';
