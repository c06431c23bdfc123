import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run the lab (@assetfs/lab, lab/) from its TypeScript source, as they run src/, so they need
    // no lab build; node (bench, `assetfs demo`) runs lab/dist through lab/package.json's exports. An
    // alias rather than an export condition: a custom condition list would also change how vite
    // resolves the lab's own dependencies (the AWS SDK's `module` builds are not loadable by node).
    alias: [{ find: /^@assetfs\/lab\/(emulators|demo)\/(.*)$/, replacement: `${fileURLToPath(new URL('./lab/src/', import.meta.url))}$1/$2` }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    // Two cores: more workers only add contention with the storage servers the tests start.
    maxWorkers: 2,
  },
});
