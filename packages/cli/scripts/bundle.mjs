#!/usr/bin/env node
// The CLI as `npm pack` ships it: one ESM file, lib/agentpack-identity.js, that a machine without
// this repository can run. Our own @agentpack-identity/protocol is not published, so it is
// inlined from its TypeScript sources, and so are its npm dependencies (zod, tweetnacl,
// @noble/hashes): the tarball has no runtime dependencies and installs offline. The licences of
// the inlined packages go beside it (lib/THIRD-PARTY-LICENSES.txt).
//
// The service's code never goes in: the maintenance commands (`secrets rewrap`, `maintenance
// prune|migrate-digests`) refuse with one line in the bundle (the define below), without
// looking for any module (commands/maintenance.ts).
//
// The launcher bin/agentpack-identity.js runs lib/main.js (the tsc build, in this repository)
// when it is there, and this bundle otherwise (in the tarball, whose "files" leave lib/main.js
// out). Run by `npm run build` and by `prepack`, so `npm pack` always ships a fresh bundle.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const cliDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const packagesDir = join(cliDir, '..');
const OUT = join(cliDir, 'lib', 'agentpack-identity.js');
const LICENSES = join(cliDir, 'lib', 'THIRD-PARTY-LICENSES.txt');
const FIRST_PARTY = /^@agentpack-identity\/(protocol)$/;
/** What a device install must never carry, even by accident. */
const FORBIDDEN =
  /(^|\/)node_modules\/(firebase-admin|firebase-functions|better-sqlite3|@google-cloud)\//;

/** Our own packages from their TypeScript sources (no build of theirs needed). */
const firstPartyInline = {
  name: 'first-party-inline',
  setup(b) {
    b.onResolve({ filter: /^@agentpack-identity\// }, (args) => {
      const m = FIRST_PARTY.exec(args.path);
      if (m === null) return { errors: [{ text: `${args.path} cannot be bundled into the CLI` }] };
      return { path: join(packagesDir, m[1], 'src', 'index.ts') };
    });
  },
};

const result = await build({
  absWorkingDir: cliDir,
  entryPoints: [join(cliDir, 'src', 'main.ts')],
  outfile: OUT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'bundle',
  plugins: [firstPartyInline],
  legalComments: 'eof',
  metafile: true,
  // The standalone CLI never looks for the service's code (commands/maintenance.ts).
  define: { __AGENTPACK_STANDALONE__: 'true' },
  logLevel: 'warning',
  banner: {
    // tweetnacl is CommonJS and require()s node:crypto: give the ESM bundle a require().
    js: [
      '// agentpack-identity CLI, bundled by packages/cli/scripts/bundle.mjs: do not edit.',
      "import { createRequire as __agentpackCreateRequire } from 'node:module';",
      'const require = __agentpackCreateRequire(import.meta.url);',
    ].join('\n'),
  },
});

const inputs = Object.keys(result.metafile.inputs).map((p) => p.split(sep).join('/'));
const forbidden = inputs.filter((p) => FORBIDDEN.test(p) || p.includes('functions/src/'));
if (forbidden.length > 0) {
  throw new Error(`the CLI bundle must not contain the service's code: ${forbidden.join(', ')}`);
}

/** Every npm package inlined, by the folder holding its package.json. */
const packageDirs = new Set();
for (const input of inputs) {
  const at = input.lastIndexOf('node_modules/');
  if (at === -1) continue;
  const rest = input.slice(at + 'node_modules/'.length).split('/');
  const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  packageDirs.add(join(cliDir, input.slice(0, at + 'node_modules/'.length) + name));
}
const notices = [...packageDirs].sort().map((dir) => {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\..*)?$/i.test(f));
  const text =
    file === undefined
      ? `(${pkg.license ?? 'no licence file'})`
      : readFileSync(join(dir, file), 'utf8').trim();
  return `${pkg.name} ${pkg.version} (${pkg.license ?? 'unknown'})\n\n${text}\n`;
});
writeFileSync(
  LICENSES,
  `The agentpack-identity CLI bundle (agentpack-identity.js) includes these packages:\n\n${notices.join('\n' + '-'.repeat(72) + '\n\n')}`,
);
if (!existsSync(OUT)) throw new Error(`esbuild wrote no ${relative(cliDir, OUT)}`);
