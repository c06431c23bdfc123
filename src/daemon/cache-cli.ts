/**
 * `assetfs refresh PATH`, `assetfs cache stats`, `assetfs cache clear [PATH]`: cache control from the
 * shell, through the running daemon's control socket (routes in cache-routes.ts).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { formatBytes } from '../config/units.js';
import { callControl, controlSocketPath } from './control.js';
import type { CacheStatsDoc } from './cache-routes.js';

type Run = (fn: () => Promise<void>) => Promise<void>;

interface SocketOpts {
  config: string;
  socket?: string;
}

const socketOf = async (o: SocketOpts) => o.socket ?? controlSocketPath((await loadConfig(o.config)).cacheDir);

function withSocket(cmd: Command, defaultConfig: string): Command {
  return cmd
    .option('-c, --config <file>', 'config file of the daemon to ask', defaultConfig)
    .option('--socket <path>', 'control socket (default: <cacheDir>/control.sock from the config)');
}

export function renderCacheStats(s: CacheStatsDoc): string {
  const rate = (hits: number, misses: number) => (hits + misses ? `${((100 * hits) / (hits + misses)).toFixed(1)}%` : '-');
  return [
    `memory: ${formatBytes(s.memory.bytes)} of ${formatBytes(s.memory.limit)} in ${s.memory.blocks} blocks; hit rate ${rate(s.memory.hits, s.memory.misses)} (${s.memory.hits} hits, ${s.memory.misses} misses); ${s.memory.evictions} evicted`,
    `disk:   ${formatBytes(s.disk.bytes)} of ${formatBytes(s.disk.limit)} in ${s.disk.blocks} blocks, plus ${formatBytes(s.disk.pinnedBytes)} pinned in ${s.disk.pinnedBlocks} blocks; hit rate ${rate(s.disk.hits, s.disk.misses)} (${s.disk.hits} hits, ${s.disk.misses} misses); ${s.disk.evictions} evicted`,
  ].join('\n');
}

export function registerCacheCommands(program: Command, run: Run, defaultConfig: string): void {
  withSocket(
    program
      .command('refresh')
      .description('forget cached listings, attributes and "no such file" answers at and below a path (and the .by-id entries of its source), so the next ls sees remote changes')
      .argument('<path>', 'a file or folder inside the mount (the mount point itself: everything)'),
    defaultConfig,
  ).action((path: string, o: SocketOpts) =>
    run(async () => {
      const r = (await callControl(await socketOf(o), 'POST', '/refresh', { path: resolve(path) })) as { forgotten: number; kernelForgot: number };
      process.stdout.write(`refreshed ${path}: ${r.forgotten} cached entr${r.forgotten === 1 ? 'y' : 'ies'} forgotten (${r.kernelForgot} in the kernel)\n`);
    }),
  );

  const cache = program.command('cache').description('inspect or clear the block cache of the running daemon');
  withSocket(cache.command('stats').description('what the memory and disk tiers hold, hit rates, evictions, pinned bytes'), defaultConfig)
    .option('--json', 'machine-readable output', false)
    .action((o: SocketOpts & { json: boolean }) =>
      run(async () => {
        const s = (await callControl(await socketOf(o), 'GET', '/cache')) as CacheStatsDoc;
        process.stdout.write(`${o.json ? JSON.stringify(s, null, 2) : renderCacheStats(s)}\n`);
      }),
    );
  withSocket(
    cache
      .command('clear')
      .description('drop cached blocks of the files under a path (default: all); pinned files stay on disk')
      .argument('[path]', 'a file or folder inside the mount'),
    defaultConfig,
  ).action((path: string | undefined, o: SocketOpts) =>
    run(async () => {
      const r = (await callControl(await socketOf(o), 'POST', '/cache/clear', path === undefined ? {} : { path: resolve(path) })) as CacheStatsDoc & {
        files?: number;
        freed: { memory: number; disk: number };
      };
      const what = path === undefined ? 'the cache' : `${path}${r.files === undefined ? '' : ` (${r.files} file${r.files === 1 ? '' : 's'})`}`;
      process.stdout.write(`cleared ${what}: ${formatBytes(r.freed.disk)} freed on disk, ${formatBytes(r.freed.memory)} in memory; ${formatBytes(r.disk.pinnedBytes)} pinned kept\n`);
    }),
  );
}
