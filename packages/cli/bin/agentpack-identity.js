#!/usr/bin/env node
// The `agentpack-identity` CLI. The code lives in TypeScript (src/main.ts) and is compiled into
// lib/ by `npm run build`; this launcher only finds it and runs it.
import { existsSync } from 'node:fs';

const entry = new URL('../lib/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('agentpack-identity: the CLI is not built: run npm run build first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
await main();
