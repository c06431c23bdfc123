/**
 * Shared metadata (issue 23): logins, listings and signed-URL mints that reach a platform when 4 hosts
 * walk the same tree, with the shared tier and without it. The platform is the AMS v2 emulator over
 * Azurite (it logs in with Azure AD client credentials, lists Assets and their Files, and mints a SAS
 * locator per asset); each host is what a daemon builds for its metadata: its own provider, DirCache
 * and LocatorCache, and with the shared tier its own connection to one real redis-server. The hosts
 * walk one after the other (the case the shared tier is for: a farm reopening one project), each
 * listing every folder and minting a URL for every file. Not a test: nothing here asserts.
 *
 *   node dist/bench/shared-meta.js     (alone), or as part of `npm run bench` (bench/run.ts)
 */
import { ConfigSchema, SharedSchema, type SourceConfig } from '../src/config/schema.js';
import { startAmsEmulator } from '@assetfs/lab/emulators/ams/index.js';
import { AzureBacking } from '@assetfs/lab/emulators/common/backing.js';
import { startAzurite } from '@assetfs/lab/emulators/storage-servers.js';
import { createProvider } from '../src/providers/registry.js';
import { startSharedTier, type SharedTier } from '../src/farm/index.js';
import { DirCache } from '../src/vfs/dir-cache.js';
import { LocatorCache } from '../src/read/locator-cache.js';
import { silentLogger } from '../src/util/logger.js';
import type { Provider, Ref } from '../src/core/types.js';
import { startRedis } from '../test/helpers/redis-server.js';

const HOSTS = Number(process.env.BENCH_SHARED_HOSTS ?? 4);
const ASSETS = 8;
const FILES = 6;

interface Counts {
  logins: number;
  listings: number;
  mints: number;
}

async function walk(provider: Provider, dirs: DirCache, locators: LocatorCache, ref: Ref): Promise<void> {
  for (const e of (await dirs.get(provider, ref, 60_000)).values()) {
    if (e.kind === 'dir') await walk(provider, dirs, locators, e.ref);
    else await locators.get(provider, { source: provider.name, ref: e.ref, version: e.version, size: e.size });
  }
}

export async function sharedMetaBench(): Promise<string[][]> {
  const azurite = await startAzurite();
  const redis = await startRedis();
  const ams = await startAmsEmulator({ azure: new AzureBacking(azurite.url, azurite.url) });
  try {
    for (let a = 0; a < ASSETS; a++) {
      const id = ams.createAsset(`Project ${a}`);
      for (let f = 0; f < FILES; f++) await ams.putFile(id, `shot-${f}.mov`, Buffer.from(`asset ${a} file ${f}`));
    }
    const cfg = ConfigSchema.parse({ sources: [{ name: 'ams', type: 'ams', restUrl: ams.apiUrl, tokenUrl: ams.tokenUrl, clientId: ams.clientId, clientSecret: ams.clientSecret }] }).sources[0] as SourceConfig;
    const run = async (shared: boolean, prefix: string): Promise<Counts> => {
      ams.server.clearLog();
      const tiers: SharedTier[] = [];
      for (let h = 0; h < HOSTS; h++) {
        const tier = shared ? await startSharedTier(SharedSchema.parse({ redis: redis.socket, keyPrefix: prefix, hostName: `host${h}` }), { log: silentLogger }) : undefined;
        if (tier) tiers.push(tier);
        const provider = await createProvider(cfg, { log: silentLogger });
        const dirs = new DirCache({ maxRetryTimeMs: 10_000, ...(tier ? { shared: tier.metadata } : {}) });
        const locators = new LocatorCache(tier ? { shared: tier.metadata } : {});
        await walk(provider, dirs, locators, '');
        // What this host shared is written in the background: the next host walks once it is in Redis.
        await new Promise((r) => setTimeout(r, 200));
        await provider.close();
      }
      await Promise.all(tiers.map((t) => t.close()));
      const log = ams.server.requests();
      return {
        logins: log.filter((r) => r.method === 'POST' && /\/oauth2\/token$/.test(r.path)).length,
        listings: log.filter((r) => r.method === 'GET' && /^\/api\/Assets(\('[^']*'\)\/Files)?\/?$/.test(r.path)).length,
        mints: log.filter((r) => r.method === 'POST' && /^\/api\/Locators\/?$/.test(r.path)).length,
      };
    };
    const without = await run(false, 'bench-off:');
    const withShared = await run(true, 'bench-on:');
    const ratio = (a: number, b: number) => (b ? (a / b).toFixed(2) : 'n/a');
    const tree = `${ASSETS} assets × ${FILES} files`;
    return [
      [`${HOSTS} hosts walking one AMS tree (${tree}): logins at the emulator, shared tier vs none`, `${withShared.logins} vs ${without.logins}`, `${ratio(withShared.logins, without.logins)} × (a host served wholly from Redis never calls the API, so never logs in; tokens themselves are not shared)`],
      [`${HOSTS} hosts walking one AMS tree (${tree}): listings at the emulator, shared tier vs none`, `${withShared.listings} vs ${without.listings}`, `${ratio(withShared.listings, without.listings)} × (one host's: ${without.listings / HOSTS})`],
      [`${HOSTS} hosts walking one AMS tree (${tree}): URL mints (locators) at the emulator, shared tier vs none`, `${withShared.mints} vs ${without.mints}`, `${ratio(withShared.mints, without.mints)} × (one host's: ${without.mints / HOSTS})`],
    ];
  } finally {
    await ams.close();
    await redis.stop();
    await azurite.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await sharedMetaBench();
  for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
}
