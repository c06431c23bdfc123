/**
 * What every uploader test needs: local files, an engine with short delays, an uploader wrapper that
 * counts (and can hold back or fail) the parts it sends, and the scenarios every uploader is put
 * through the same way: a daemon killed mid-upload and restarted, and a file that changes while it
 * goes up. Each test keeps its own assertions on what the platform saw.
 */
import { appendFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Journal } from '../../src/upload/journal.js';
import type { Uploader } from '../../src/upload/types.js';
import { UploadEngine, type UploadEngineOptions } from '../../src/upload/engine.js';
import { silentLogger } from '../../src/util/logger.js';
import { until } from '../helpers/mount.js';

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

export type TestJob = Parameters<UploadEngine['enqueue']>[0];

/**
 * A daemon killed mid-upload: `job` runs in an engine sending one part at a time, whose uploader
 * sends the parts below `crashAt` and never finishes `crashAt` or a later one. Once that part starts,
 * the engine is abandoned as SIGKILL would leave it: nothing more is journaled. The job's id.
 */
export async function uploadUntilCrash(journal: Journal, inner: Uploader, job: TestJob, crashAt: number, partSize?: number): Promise<number> {
  let crash!: () => void;
  const crashed = new Promise<void>((r) => (crash = r));
  const { u } = countingUploader(inner, {
    partSize,
    onPart: async (n) => {
      if (n < crashAt) return;
      crash();
      await new Promise(() => undefined);
    },
  });
  const e = testEngine(journal, u, { partsPerFile: 1 });
  e.start();
  const { id } = e.enqueue(job);
  await crashed;
  void e.stop();
  return id;
}

/** The restarted daemon: a new engine on the journal file `db` finishes job `id` through `inner`. The journal (the caller closes it) and the parts sent. */
export async function resumeUpload(db: string, inner: Uploader, id: number, partSize?: number): Promise<{ journal: Journal; sent: number[] }> {
  const journal = new Journal(db);
  const { u, sent } = countingUploader(inner, { partSize });
  const e = testEngine(journal, u);
  e.start();
  await e.waitFor(id);
  await e.stop();
  return { journal, sent };
}

/**
 * `job` uploaded while `tail` is appended to its local file as part `atPart` starts (once). Resolves
 * when the journal has the job done (its first attempt fails as "changed"); the job's id.
 */
export async function uploadWhileAppending(journal: Journal, inner: Uploader, job: TestJob, tail: Buffer | string, opts: { atPart?: number; partSize?: number } = {}): Promise<number> {
  let appended = false;
  const { u } = countingUploader(inner, {
    partSize: opts.partSize,
    onPart: async (n) => {
      if (n !== (opts.atPart ?? 2) || appended) return;
      appended = true;
      await appendFile(job.localPath, tail);
    },
  });
  const e = testEngine(journal, u);
  e.start();
  const { id } = e.enqueue(job);
  await e.waitFor(id).catch(() => undefined);
  await until(async () => journal.get(id)!.state === 'done', `job ${id} done after its restart`, 60_000, 50);
  await e.stop();
  return id;
}
