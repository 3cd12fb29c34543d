#!/usr/bin/env node
// Writes docs/openapi.json: the OpenAPI 3.1 document of the route table, generated from the
// built service (functions/lib, made by `npm run build`; `npm run openapi` builds first), the
// same document `GET /openapi.json` serves. With `--check`, writes nothing and exits 1 when the
// committed copy differs from what the code generates (test/openapi.test.ts checks it too).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import * as prettier from 'prettier';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'docs', 'openapi.json');

const { ROUTES } = await import(join(root, 'functions/lib/routes/table.js'));
const { openApiDocument } = await import(join(root, 'functions/lib/routes/openapi.js'));
const document = openApiDocument(ROUTES);

if (process.argv.includes('--check')) {
  let committed = null;
  try {
    committed = JSON.parse(readFileSync(target, 'utf8'));
  } catch {
    committed = null;
  }
  if (!isDeepStrictEqual(committed, document)) {
    console.error('docs/openapi.json is not current: run `npm run openapi`');
    process.exit(1);
  }
  console.log('docs/openapi.json is current');
} else {
  const options = { ...(await prettier.resolveConfig(target)), filepath: target };
  writeFileSync(target, await prettier.format(JSON.stringify(document, null, 2), options));
  console.log(`wrote ${target} (${Object.keys(document.paths).length} paths)`);
}
