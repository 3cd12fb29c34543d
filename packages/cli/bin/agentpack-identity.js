#!/usr/bin/env node
// The `agentpack-identity` CLI. The code lives in TypeScript (src/main.ts). In this repository
// `npm run build` compiles it into lib/ and this launcher runs lib/main.js; the package that
// `npm pack` makes carries instead lib/agentpack-identity.js, the whole CLI in one file
// (scripts/bundle.mjs), which runs on a machine without the repository.
import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL, fileURLToPath } from 'node:url';

// From the launcher's real place: a symlink's (node_modules/.bin, with --preserve-symlinks-main)
// would resolve ../lib against another folder.
const here = pathToFileURL(realpathSync(fileURLToPath(import.meta.url)));
const entry = ['../lib/main.js', '../lib/agentpack-identity.js']
  .map((path) => new URL(path, here))
  .find((url) => existsSync(url));
if (entry === undefined) {
  process.stderr.write('agentpack-identity: the CLI is not built: run npm run build first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
await main();
