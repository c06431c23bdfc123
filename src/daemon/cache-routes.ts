/**
 * Control routes for cache control from the shell (docs/semantics.md "Cache control"):
 *   POST /refresh      {path}   forget listings, attributes and negative answers at and below a path,
 *                              and the ids of its source (vfs/refresh.ts), in the daemon and the kernel
 *   GET  /cache                 what the block cache holds
 *   POST /cache/clear  {path?}  drop the cached blocks of the files under a path (or all), pinned ones kept
 */
import type { AssetVfs } from '../vfs/vfs.js';
import type { TieredBlockCache } from '../cache/tiered-cache.js';
import type { ControlHandler } from './control.js';

export interface CacheRoutesDeps {
  mountpoint: string;
  vfs: AssetVfs;
  cache: TieredBlockCache;
  /** The kernel forgets these mount paths' attributes (fuse adapter); resolves with how many it knew. */
  invalidateKernel(paths: readonly string[]): Promise<number>;
  /** A farm's shared tier: the other hosts refresh the same path (src/farm/metadata.ts). */
  shareRefresh?(path: string): Promise<void>;
}

/** A path from the command line (absolute: resolved by the CLI) as a path of the mount; '/' for the mount itself. */
export function mountPath(mountpoint: string, body: unknown, opts: { optional?: boolean } = {}): string | undefined {
  const raw = (body as { path?: unknown } | undefined)?.path;
  if (raw === undefined && opts.optional) return undefined;
  const p = String(raw ?? '').replace(/\/+$/, '');
  if (p === mountpoint || p === '') return '/';
  if (p.startsWith(`${mountpoint}/`)) return p.slice(mountpoint.length);
  throw new Error(`${String(raw)} is not a path inside the mount at ${mountpoint}`);
}

export interface CacheStatsDoc {
  memory: ReturnType<TieredBlockCache['memory']['stats']>;
  disk: ReturnType<TieredBlockCache['disk']['stats']>;
}

export function cacheRoutes(d: CacheRoutesDeps): Record<string, ControlHandler> {
  const stats = (): CacheStatsDoc => ({ memory: d.cache.memory.stats(), disk: d.cache.disk.stats() });

  return {
    'POST /refresh': async (body) => {
      const path = mountPath(d.mountpoint, body)!;
      await d.shareRefresh?.(path);
      const paths = await d.vfs.refresh(path);
      return { path, forgotten: paths.length, kernelForgot: await d.invalidateKernel(paths) };
    },
    'GET /cache': async () => stats(),
    'POST /cache/clear': async (body) => {
      const path = mountPath(d.mountpoint, body, { optional: true });
      const before = stats();
      let files: number | undefined;
      if (path === undefined || path === '/') {
        await d.cache.clearUnpinned();
      } else {
        const objects: Array<{ source: string; ref: string }> = [];
        for await (const { obj } of d.vfs.walkFiles(path)) objects.push(obj);
        await d.cache.clearUnpinned(objects);
        files = objects.length;
      }
      const after = stats();
      const freed = { memory: Math.max(0, before.memory.bytes - after.memory.bytes), disk: Math.max(0, before.disk.bytes + before.disk.pinnedBytes - after.disk.bytes - after.disk.pinnedBytes) };
      return { path: path ?? '/', files, freed, ...after };
    },
  };
}
