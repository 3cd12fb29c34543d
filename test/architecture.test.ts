/**
 * The layer order, checked on every import of every source file, in the spirit of the
 * route-table test: a file that imports against the order fails here, naming both files.
 *
 * The service (functions/src), innermost first — a file imports only from its own rank or an
 * inner one:
 *   0 ports/                     interfaces to the outside (store, keyring, clock, logger, HTTP)
 *   1 core/, tokens/             rules over the ports
 *   2 auth/, routes/, config/    credentials → principals; the route table; configuration
 *   3 http/                      the request pipeline
 *   4 adapters/, cloud/, local/, app.ts, index.ts, maintenance.ts   wiring and the outside world
 * Only the outermost rank may touch firebase-*, better-sqlite3, Cloud KMS or gRPC.
 * The protocol package imports nothing but node:, tweetnacl, @noble/hashes and zod; the CLI nothing
 * of the service's (its maintenance group loads the service at run time, by a name it builds).
 * Each file also stays under ~400 lines unless it says at its top why it is longer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Service ranks by the first path segment under functions/src. */
const SERVICE_RANKS: Readonly<Record<string, number>> = {
  ports: 0,
  core: 1,
  tokens: 1,
  auth: 2,
  routes: 2,
  config: 2,
  http: 3,
  adapters: 4,
  cloud: 4,
  local: 4,
  'app.ts': 4,
  'index.ts': 4,
  'maintenance.ts': 4,
};
const OUTERMOST = 4;

/** Packages with I/O or a cloud client: the outermost rank only. */
const INFRASTRUCTURE =
  /^(firebase-admin|firebase-functions|better-sqlite3|@google-cloud\/|@grpc\/)/;
const PROTOCOL_DEPENDENCIES = /^(tweetnacl|@noble\/hashes|zod)(\/|$)/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The module specifiers a TypeScript text imports (static, re-exports, literal dynamic). */
export function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const re of [
    /(?:^|\n)\s*(?:import|export)\s[^;'"]*?from\s*'([^']+)'/g,
    /(?:^|\n)\s*import\s*'([^']+)'/g,
    /\bimport\(\s*'([^']+)'\s*\)/g,
  ]) {
    for (const m of code.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

/** The rank of a file under functions/src, by its first path segment. */
function serviceRank(file: string): number | undefined {
  const top = relative(join(root, 'functions/src'), file).split('/')[0]!.replace(/\.js$/, '.ts');
  return SERVICE_RANKS[top];
}

/** Every violation of the rules in `files` (absolute path → text). */
export function violations(files: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  const serviceDir = join(root, 'functions/src');
  const protocolDir = join(root, 'packages/protocol/src');
  const cliDir = join(root, 'packages/cli/src');
  for (const [file, text] of files) {
    const name = relative(root, file);
    const lines = text.split('\n').length;
    if (lines > 420 && !/^\/\*\*[\s\S]{0,2000}?longer than/i.test(text)) {
      problems.push(`${name}: ${lines} lines, and no reason at its top for being that long`);
    }
    for (const spec of importsOf(text)) {
      const relativeSpec = spec.startsWith('.');
      const target = relativeSpec ? resolve(dirname(file), spec) : null;
      if (file.startsWith(serviceDir + '/')) {
        const from = serviceRank(file);
        if (from === undefined) {
          problems.push(`${name}: not in a known layer (add it to SERVICE_RANKS)`);
          continue;
        }
        if (target !== null) {
          if (!target.startsWith(serviceDir + '/')) {
            problems.push(`${name} imports ${spec}: outside the service (use a package name)`);
            continue;
          }
          const to = serviceRank(target);
          if (to === undefined || to > from) {
            problems.push(`${name} (rank ${from}) imports ${spec} (rank ${to ?? '?'})`);
          }
        } else if (INFRASTRUCTURE.test(spec) && from < OUTERMOST) {
          problems.push(`${name} (rank ${from}) imports ${spec}: only adapters and the wiring may`);
        } else if (
          spec.startsWith('@agentpack-identity/') &&
          spec !== '@agentpack-identity/protocol'
        ) {
          problems.push(
            `${name} imports ${spec}: the service depends on the protocol package only`,
          );
        }
      } else if (file.startsWith(protocolDir + '/')) {
        if (
          target !== null
            ? !target.startsWith(protocolDir + '/')
            : !spec.startsWith('node:') && !PROTOCOL_DEPENDENCIES.test(spec)
        ) {
          problems.push(`${name} imports ${spec}: the protocol package is pure and stands alone`);
        }
      } else if (file.startsWith(cliDir + '/')) {
        const allowed =
          target !== null
            ? target.startsWith(cliDir + '/')
            : spec.startsWith('node:') || spec === '@agentpack-identity/protocol';
        if (!allowed)
          problems.push(`${name} imports ${spec}: the CLI needs only the protocol package`);
      }
    }
  }
  return problems;
}

function readAll(...dirs: string[]): Map<string, string> {
  return new Map(
    dirs.flatMap((dir) => sourceFiles(join(root, dir))).map((f) => [f, readFileSync(f, 'utf8')]),
  );
}

describe('the layer order', () => {
  it('holds for every import of the service, the protocol package and the CLI', () => {
    const files = readAll('functions/src', 'packages/protocol/src', 'packages/cli/src');
    expect(files.size).toBeGreaterThan(60);
    expect(violations(files)).toEqual([]);
  });

  it('finds the imports of multi-line, type-only, re-export and dynamic forms, not comments', () => {
    const text = [
      '/** @example import { x } from "nope"; */',
      "// import { y } from './commented.js';",
      "import {\n  a,\n  type B,\n} from './multi.js';",
      "import type { C } from '../ports/c.js';",
      "export type { D } from './d.js';",
      "import './side-effect.js';",
      "const m = await import('./lazy.js');",
    ].join('\n');
    expect(importsOf(text).sort()).toEqual(
      ['../ports/c.js', './d.js', './lazy.js', './multi.js', './side-effect.js'].sort(),
    );
  });

  it('refuses an import against the order, an infrastructure import in the core, and a CLI import of the service', () => {
    const at = (path: string) => join(root, path);
    const bad = new Map([
      [at('functions/src/ports/store.ts'), "import type { X } from '../core/audit.js';"],
      [
        at('functions/src/core/agents.ts'),
        "import { getFirestore } from 'firebase-admin/firestore';",
      ],
      [at('functions/src/config/config.ts'), "import { k } from '../adapters/kms-keyring.js';"],
      [at('functions/src/core/runs.ts'), "import { a } from '../auth/authenticate.js';"],
      [at('packages/protocol/src/grammar.ts'), "import { getApp } from 'firebase-admin/app';"],
      [at('packages/cli/src/main.ts'), "import { s } from '../../../functions/src/app.js';"],
    ]);
    const found = violations(bad);
    expect(found).toHaveLength(6);
    expect(found[0]).toMatch(
      /ports\/store\.ts \(rank 0\) imports \.\.\/core\/audit\.js \(rank 1\)/,
    );
    const good = new Map([
      [at('functions/src/core/agents.ts'), "import type { Store } from '../ports/store.js';"],
      [
        at('functions/src/adapters/x.ts'),
        "import { a } from '../core/agents.js';\nimport 'firebase-admin/app';",
      ],
      [at('packages/cli/src/main.ts'), "import { NAME } from '@agentpack-identity/protocol';"],
    ]);
    expect(violations(good)).toEqual([]);
  });
});
