#!/usr/bin/env -S node --max-semi-space-size=1 --initial-old-space-size=32 --expose-gc
// --max-semi-space-size=1 (MiB): V8's young generation otherwise grows to 3 × 16 MiB of resident
// memory that a daemon serving reads from its own block cache never needs.
// --initial-old-space-size=32 (MiB): V8 counts the socket buffers of a fast download as external
// memory and, against a small old generation, starts a full mark-compact every few tens of
// milliseconds of a cold read, each freeing almost nothing; with this, about one per read.
// --expose-gc: for src/util/body-gc.ts, which collects the young generation every 4 MiB of network
// bodies so that their socket buffers do not pile up.
// What each flag was measured to change: docs/perf-log.md (2026-11-28, 2026-11-29).
// Tests and the bench start the daemon with the flags of this line too (test/helpers/mount.ts).
// Runs the compiled CLI; `npm run build` (done by the README's setup commands) produces dist/.
import { existsSync } from 'node:fs';
// Disk-tier reads and writes run on libuv's thread pool (4 threads by default); readahead asks for
// many blocks at once. Set before the pool starts, i.e. before anything is imported.
process.env.UV_THREADPOOL_SIZE ??= '16';
const entry = new URL('../dist/daemon/assetfs.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('assetfs: not built yet: run `npm ci && npm run build` in the assetfs directory\n');
  process.exit(1);
}
await import(entry.href);
