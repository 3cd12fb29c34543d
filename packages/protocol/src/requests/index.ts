/**
 * The request schemas of every route, with zod: the service validates each body with its
 * schema (strict: an unknown field is refused), and a client types its calls with
 * `z.input<typeof ...>` of the same schema.
 */
export * from './agents.js';
export * from './device.js';
export * from './federation.js';
export * from './fields.js';
export * from './lists.js';
export * from './operators.js';
export * from './runs.js';
export * from './secrets.js';
