/**
 * `assetfs check-config --online`: builds every source's provider, logs in and lists its root and
 * folders of it (source-check.ts), all sources at once, and prints one line per source in config order.
 */
import type { Config } from '../config/schema.js';
import type { Provider } from '../core/types.js';
import { createProvider } from '../providers/registry.js';
import { silentLogger } from '../util/logger.js';
import { brokenProvider } from './health.js';
import { checkLine, checkSource } from './source-check.js';

/** Folders of each root listed after it: enough to try every Wordbee scope of a usual config. */
const FOLDERS = 10;

/** Prints a line per source through `print`; resolves with the number of sources that failed. */
export async function checkOnline(config: Config, print: (line: string) => void): Promise<number> {
  const results = await Promise.all(
    config.sources.map(async (cfg) => {
      let p: Provider;
      try {
        p = await createProvider(cfg, { log: silentLogger });
      } catch (e) {
        p = brokenProvider(cfg, e);
      }
      try {
        return { cfg, r: await checkSource(p, { folders: FOLDERS, timeoutMs: config.retry.requestTimeout }) };
      } finally {
        await p.close().catch(() => undefined);
      }
    }),
  );
  for (const { cfg, r } of results) print(checkLine(cfg, r));
  return results.filter(({ r }) => !r.ok).length;
}
