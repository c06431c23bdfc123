#!/usr/bin/env node
// The mount(8) helper: `mount -t fuse.assetfs CONFIG MOUNTPOINT` and fstab lines of type fuse.assetfs
// run it once linked as /sbin/mount.fuse.assetfs (docs/operations.md). It starts the daemon, returns
// when the mount answers, and exits non-zero with one line when it does not.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';

const entry = new URL('../dist/src/daemon/mount-helper.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('mount.assetfs: not built yet: run `npm ci && npm run build` in the assetfs directory\n');
  process.exit(32);
}
const { runMountHelper } = await import(entry.href);
process.exitCode = await runMountHelper(process.argv.slice(2), basename(process.argv[1] ?? 'mount.assetfs', '.js'));
