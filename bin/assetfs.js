#!/usr/bin/env node
// Runs the compiled CLI; `npm run build` (done by the README's setup commands) produces dist/.
import { existsSync } from 'node:fs';
const entry = new URL('../dist/daemon/assetfs.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('assetfs: not built yet: run `npm ci && npm run build` in the assetfs directory\n');
  process.exit(1);
}
await import(entry.href);
