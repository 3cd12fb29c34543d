/**
 * Builds the package so that its `npm pack` tarball installs anywhere, with no workspace:
 *
 * - `lib/index.js`: src/index.ts bundled with the protocol package inlined (it is a workspace
 *   package, never published); only the npm packages in "dependencies" stay imports. This file
 *   must run on any runtime with fetch: the build fails if it imports a `node:` module or
 *   names Buffer or require.
 * - `lib/node-crypto.js`: the node:crypto backend (the protocol's own signing and sealed-box
 *   code), imported by lib/index.js only where node:crypto is present.
 * - `lib/node.js`: the `./node` entry (credentials from the CLI's files; node:fs).
 * - `lib/index.d.ts`, `lib/node.d.ts`: the types, bundled, with the protocol's declarations
 *   inlined from its sources (tsconfig.build.json maps the package there: the request and
 *   response schemas the types come from), so they reference only `zod` among the dependencies.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { generateDtsBundle } from 'dts-bundle-generator';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const out = join(here, 'lib');
const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const dependencies = Object.keys(pkg.dependencies ?? {});

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const protocolSrc = join(root, 'packages/protocol/src');

/**
 * The protocol package is inlined from its TypeScript sources (no build of it is needed, and
 * none is written). It is pure apart from its node:crypto functions, so each of its modules is
 * marked side-effect free, and node: imports too: what the portable entry does not use — and the
 * node: imports only that code needed — is dropped from it.
 */
const sideEffectFree = {
  name: 'side-effect-free',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => ({
      path: args.path,
      external: true,
      sideEffects: false,
    }));
    build.onResolve({ filter: /^@agentpack-identity\/protocol$/ }, () => ({
      path: join(protocolSrc, 'index.ts'),
      sideEffects: false,
    }));
    build.onResolve({ filter: /^\.\.?\// }, async (args) => {
      if (args.pluginData?.inner || !args.importer.startsWith(protocolSrc)) return undefined;
      const result = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { inner: true },
      });
      return { ...result, sideEffects: false };
    });
  },
};

/** The node backend is its own file, loaded by a dynamic import that stays one. */
const nodeBackendExternal = {
  name: 'node-backend-external',
  setup(build) {
    build.onResolve({ filter: /^\.\/node\.js$/ }, (args) =>
      args.importer.endsWith(join('src', 'crypto', 'backend.ts'))
        ? { path: './node-crypto.js', external: true }
        : undefined,
    );
  },
};

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  external: dependencies.flatMap((d) => [d, `${d}/*`]),
  legalComments: 'none',
  logLevel: 'warning',
  tsconfig: join(here, 'tsconfig.json'),
};

await esbuild.build({
  ...common,
  entryPoints: { index: join(here, 'src/index.ts') },
  outdir: out,
  platform: 'neutral',
  mainFields: ['module', 'main'],
  plugins: [nodeBackendExternal, sideEffectFree],
});
await esbuild.build({
  ...common,
  entryPoints: { 'node-crypto': join(here, 'src/crypto/node.ts'), node: join(here, 'src/node.ts') },
  outdir: out,
  platform: 'node',
  plugins: [sideEffectFree],
});

const portable = readFileSync(join(out, 'index.js'), 'utf8');
const nodeOnly = [
  /\bfrom\s*["']node:/,
  /\bimport\s*\(\s*["']node:/,
  /(?<!globalThis\.)\bBuffer\b/,
  /\brequire\s*\(/,
];
for (const pattern of nodeOnly) {
  if (pattern.test(portable)) {
    throw new Error(`lib/index.js must run without Node, but it matches ${pattern}`);
  }
}

// Types: one file per entry, the protocol's declarations inlined.
const [indexTypes, nodeTypes] = generateDtsBundle(
  [
    {
      filePath: join(here, 'src/index.ts'),
      libraries: { inlinedLibraries: ['@agentpack-identity/protocol'] },
      output: { noBanner: true },
    },
    {
      filePath: join(here, 'src/node.ts'),
      libraries: { inlinedLibraries: ['@agentpack-identity/protocol'] },
      output: { noBanner: true },
    },
  ],
  { preferredConfigPath: join(here, 'tsconfig.build.json') },
);
for (const [file, text] of [
  ['index.d.ts', indexTypes],
  ['node.d.ts', nodeTypes],
]) {
  const foreign =
    file === 'index.d.ts'
      ? /(from|import\()\s*["'](@agentpack-identity\/protocol|node:)/
      : /(from|import\()\s*["']@agentpack-identity\/protocol/;
  if (foreign.test(text)) {
    throw new Error(`lib/${file} imports the workspace protocol package (or, for index, node:)`);
  }
  writeFileSync(join(out, file), text);
}
