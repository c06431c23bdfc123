import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests run the lab (@assetfs/lab) from its TypeScript source, as they run src/: the `assetfs-source`
  // condition of lab/package.json's exports; `node` (bench, `assetfs demo`) runs lab/dist.
  ssr: { resolve: { conditions: ['assetfs-source', ...defaultServerConditions] } },
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
