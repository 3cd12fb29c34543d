#!/usr/bin/env node
// What `firebase deploy` uploads is `functions/` alone (see firebase.json), so the function must
// not import anything from `packages/` at run time, and Cloud Build must install exactly the
// dependency versions the tests ran against. This script makes both true, as the last step of
// the functions build:
//   1. functions/dist/: the function's first-party code (functions/src and the protocol package
//      it imports) bundled by esbuild; every npm dependency stays an import, resolved from
//      functions/node_modules on the instance. Dynamic imports stay lazy (code splitting), so
//      the Firestore store and the KMS client still load only when opened.
//   2. functions/package-lock.json: the closure of functions/package.json's dependencies cut out
//      of the repository's root lockfile, same paths, same versions, same integrity hashes.
//      Cloud Build runs `npm ci` with it.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const functionsDir = join(root, 'functions');
const FIRST_PARTY = /^@agentpack-identity\/(protocol)$/;

/** Resolves our own packages to their TypeScript sources; leaves every other package external. */
const firstPartyInline = {
  name: 'first-party-inline',
  setup(b) {
    b.onResolve({ filter: /^@agentpack-identity\// }, (args) => {
      const m = FIRST_PARTY.exec(args.path);
      if (m === null)
        return { errors: [{ text: `${args.path} cannot be bundled into the function` }] };
      return { path: join(root, 'packages', m[1], 'src', 'index.ts') };
    });
    b.onResolve({ filter: /^[^./]/ }, (args) => ({ path: args.path, external: true }));
  },
};

/**
 * The lockfile of `functions/` alone: the packages reachable from its dependencies in the root
 * lockfile, found by Node's resolution (a package's dependency is looked for in its own
 * node_modules, then in each parent's), kept at the same paths so the tree is the same.
 */
export function functionsLockfile(rootLock, functionsPkg) {
  const packages = rootLock.packages;
  const keep = new Map();
  const resolveFrom = (fromPath, name) => {
    let base = fromPath;
    for (;;) {
      const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
      if (Object.hasOwn(packages, candidate) && !packages[candidate].link) return candidate;
      if (base === '') return null;
      const cut = base.lastIndexOf('/node_modules/');
      base = cut === -1 ? '' : base.slice(0, cut);
    }
  };
  const visit = (fromPath, deps, optional) => {
    for (const name of Object.keys(deps ?? {})) {
      const found = resolveFrom(fromPath, name);
      if (found === null) {
        if (optional.has(name)) continue;
        throw new Error(
          `functions lockfile: ${name} (needed by ${fromPath || 'functions'}) is not in the root lockfile`,
        );
      }
      if (keep.has(found)) continue;
      keep.set(found, packages[found]);
      const entry = packages[found];
      visit(
        found,
        { ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies },
        new Set([
          ...Object.keys(entry.optionalDependencies ?? {}),
          ...Object.keys(entry.peerDependencies ?? {}),
        ]),
      );
    }
  };
  // functions/ is a workspace: its own nested node_modules (if any) come first, as on disk.
  visit('functions', functionsPkg.dependencies, new Set());
  const out = {
    name: functionsPkg.name,
    version: functionsPkg.version,
    lockfileVersion: rootLock.lockfileVersion,
    requires: true,
    packages: {
      '': {
        name: functionsPkg.name,
        version: functionsPkg.version,
        license: functionsPkg.license,
        dependencies: functionsPkg.dependencies,
        engines: functionsPkg.engines,
      },
    },
  };
  for (const [path, entry] of [...keep].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const { dev, devOptional, peer, ...rest } = entry;
    // In the function's own tree nothing is a dev dependency; what was optional stays optional.
    const relocated = path.startsWith('functions/') ? path.slice('functions/'.length) : path;
    if (Object.hasOwn(out.packages, relocated)) {
      // Two versions would need one place: the standalone tree cannot be the tested one.
      throw new Error(
        `functions lockfile: ${relocated} is needed in two versions; dedupe the root lockfile`,
      );
    }
    out.packages[relocated] = devOptional ? { ...rest, optional: true } : rest;
  }
  return out;
}

export async function buildFunctionsDeploy() {
  const dist = join(functionsDir, 'dist');
  rmSync(dist, { recursive: true, force: true });
  await build({
    entryPoints: [join(functionsDir, 'src', 'index.ts')],
    outdir: dist,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    sourcemap: true,
    logLevel: 'warning',
    plugins: [firstPartyInline],
    banner: {
      js: '// Built by scripts/build-functions-deploy.mjs from functions/src and packages/protocol.',
    },
  });
  const rootLock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const functionsPkg = JSON.parse(readFileSync(join(functionsDir, 'package.json'), 'utf8'));
  writeFileSync(
    join(functionsDir, 'package-lock.json'),
    `${JSON.stringify(functionsLockfile(rootLock, functionsPkg), null, 2)}\n`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildFunctionsDeploy();
