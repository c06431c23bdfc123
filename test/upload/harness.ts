/**
 * What every uploader test needs: local files, an engine with short delays, and an uploader wrapper
 * that counts (and can hold back or fail) the parts it sends.
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Journal } from '../../src/upload/journal.js';
import type { Uploader } from '../../src/upload/types.js';
import { UploadEngine, type UploadEngineOptions } from '../../src/upload/engine.js';
import { silentLogger } from '../../src/util/logger.js';

export async function localFile(dir: string, name: string, data: Buffer): Promise<{ path: string; size: number; mtimeMs: number }> {
  const path = join(dir, name);
  await writeFile(path, data);
  const st = await stat(path);
  return { path, size: st.size, mtimeMs: st.mtimeMs };
}

export function testEngine(journal: Journal, u: Uploader, over: Partial<UploadEngineOptions> = {}): UploadEngine {
  return new UploadEngine({ journal, uploaderFor: () => u, log: silentLogger, retryBaseMs: 50, stableMs: 100, partsPerFile: 2, ...over });
}

const METHODS = ['partSize', 'begin', 'confirmed', 'part', 'complete', 'abort', 'remoteVersion', 'remove', 'mkdir', 'rmdir', 'rename'] as const;

/**
 * `inner` with `over` replacing some methods, `partSize` fixed when given, and every part it sends
 * recorded in `sent` (after `onPart`, which may delay or throw). Uploaders keep their methods on the
 * prototype, so each is bound.
 */
export function countingUploader(
  inner: Uploader,
  opts: { over?: Partial<Uploader>; onPart?: (n: number) => Promise<void> | void; partSize?: number } = {},
): { u: Uploader; sent: number[] } {
  const sent: number[] = [];
  const bound: Record<string, unknown> = {};
  for (const k of METHODS) {
    const f = inner[k] as ((...a: unknown[]) => unknown) | undefined;
    if (f) bound[k] = f.bind(inner);
  }
  const u: Uploader = {
    ...(bound as unknown as Uploader),
    ...(inner.conflictMark ? { conflictMark: inner.conflictMark } : {}),
    ...(opts.partSize ? { partSize: () => opts.partSize! } : {}),
    part: async (t, id, n, data, signal) => {
      await opts.onPart?.(n);
      const etag = await inner.part(t, id, n, data, signal);
      sent.push(n);
      return etag;
    },
    ...opts.over,
  };
  return { u, sent };
}
