/**
 * `assetfs pin PATH` / `unpin PATH`: keep files (or whole folders) fully on the disk tier, downloaded in
 * the background and exempt from eviction (DiskBlockCache.setPinned).
 *
 * Invariants:
 *  - Pins survive restarts: `<cacheDir>/pins.json` holds each pinned path and the objects it covered,
 *    and load() re-marks those objects pinned before the disk tier scans its blocks, so nothing pinned
 *    is evicted at start. Each pinned path is then walked again (new files, new versions) and any
 *    missing block fetched.
 *  - Blocks are written to the disk tier directly (not through the tiered cache's best-effort queue).
 *  - Downloads are bounded (two files at a time) and never block readers: they go through the same
 *    single-flight block source.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import type { BlockSource, ObjectVersion } from '../core/types.js';
import { blockCount, objectKey } from '../core/blocks.js';
import type { Logger } from '../util/logger.js';
import type { DiskBlockCache } from '../cache/disk-cache.js';

export interface PinStatus {
  path: string;
  files: number;
  bytes: number;
  cachedBytes: number;
  state: 'downloading' | 'complete' | 'error';
  error?: string;
}

interface Pin {
  path: string;
  objects: { source: string; ref: string }[];
  files: number;
  bytes: number;
  cachedBytes: number;
  state: PinStatus['state'];
  error?: string;
}

export interface PinnerDeps {
  file: string;
  disk: DiskBlockCache;
  blocks: BlockSource;
  walk(path: string): AsyncIterable<{ path: string; obj: ObjectVersion }>;
  log: Logger;
}

export class Pinner {
  private readonly pins = new Map<string, Pin>();
  private readonly limit = pLimit(2);

  constructor(private readonly deps: PinnerDeps) {}

  /** Re-mark what was pinned before; call before the disk tier's init(). */
  async load(): Promise<void> {
    let saved: { path: string; objects: { source: string; ref: string }[] }[] = [];
    try {
      saved = JSON.parse(await readFile(this.deps.file, 'utf8'));
    } catch {
      return;
    }
    for (const p of saved) {
      for (const o of p.objects) this.deps.disk.setPinned(o.source, o.ref, true);
      this.pins.set(p.path, { path: p.path, objects: p.objects, files: p.objects.length, bytes: 0, cachedBytes: 0, state: 'downloading' });
    }
  }

  /** Walk every pinned path again and fetch what is missing (after the mount is up). */
  refreshAll(): void {
    for (const p of this.pins.values()) void this.fill(p);
  }

  async pin(path: string): Promise<PinStatus> {
    const p: Pin = this.pins.get(path) ?? { path, objects: [], files: 0, bytes: 0, cachedBytes: 0, state: 'downloading' };
    this.pins.set(path, p);
    await this.fill(p, true);
    return this.view(p);
  }

  async unpin(path: string): Promise<boolean> {
    const p = this.pins.get(path);
    if (!p) return false;
    this.pins.delete(path);
    const stillPinned = new Set([...this.pins.values()].flatMap((q) => q.objects.map((o) => objectKey(o.source, o.ref))));
    for (const o of p.objects) if (!stillPinned.has(objectKey(o.source, o.ref))) this.deps.disk.setPinned(o.source, o.ref, false);
    await this.save();
    return true;
  }

  status(): PinStatus[] {
    return [...this.pins.values()].map((p) => this.view(p));
  }

  private view(p: Pin): PinStatus {
    return { path: p.path, files: p.files, bytes: p.bytes, cachedBytes: p.cachedBytes, state: p.state, ...(p.error ? { error: p.error } : {}) };
  }

  /** Lists the path, pins its objects, saves, then downloads in the background (awaits only the listing when `listOnly`). */
  private async fill(p: Pin, listOnly = false): Promise<void> {
    const files: ObjectVersion[] = [];
    try {
      for await (const f of this.deps.walk(p.path)) files.push(f.obj);
    } catch (e) {
      p.state = 'error';
      p.error = (e as Error).message;
      if (listOnly) throw e;
      return;
    }
    p.objects = files.map((f) => ({ source: f.source, ref: f.ref }));
    p.files = files.length;
    p.bytes = files.reduce((n, f) => n + f.size, 0);
    p.cachedBytes = 0;
    p.state = 'downloading';
    delete p.error;
    for (const f of files) this.deps.disk.setPinned(f.source, f.ref, true);
    await this.save();
    const work = Promise.all(files.map((f) => this.limit(() => this.download(p, f)))).then(
      () => {
        if (this.pins.get(p.path) === p && p.state !== 'error') p.state = 'complete';
        this.deps.log.info({ path: p.path, files: p.files, bytes: p.bytes }, 'pinned: fully on disk');
      },
      (e: unknown) => {
        p.state = 'error';
        p.error = (e as Error).message;
        this.deps.log.warn({ path: p.path, err: e }, 'pin download failed');
      },
    );
    if (!listOnly) await work;
  }

  private async download(p: Pin, obj: ObjectVersion): Promise<void> {
    const bs = this.deps.blocks.blockSize;
    for (let i = 0; i < blockCount(obj.size, bs); i++) {
      if (this.pins.get(p.path) !== p) return; // unpinned meanwhile
      const len = Math.min(bs, obj.size - i * bs);
      // A copy: the block may sit in a recycled memory-tier buffer, and the disk write outlives a microtask.
      if (!this.deps.disk.has(obj, i)) await this.deps.disk.put(obj, i, Buffer.from(await this.deps.blocks.readBlock(obj, i)));
      p.cachedBytes += len;
    }
  }

  private async save(): Promise<void> {
    const data = [...this.pins.values()].map((p) => ({ path: p.path, objects: p.objects }));
    const tmp = `${this.deps.file}.tmp`;
    await writeFile(tmp, JSON.stringify(data), { mode: 0o600 });
    await rename(tmp, this.deps.file);
  }
}
