/**
 * A young-generation GC after every few MiB of network bodies, so that the socket buffers they came
 * in do not pile up between collections.
 *
 * Each socket read lands in a fresh 64 KiB buffer whose bytes live outside V8's heap; the daemon
 * copies them into a cache block and drops the buffer. V8 frees such memory only when it collects the
 * small JS object holding it, and a fast download allocates too little on the JS heap to trigger that
 * often, so the malloc heap grows by tens of MiB during a cold read. A minor GC (well under a
 * millisecond with the 1 MiB young generation of bin/assetfs.js) every 4 MiB received frees them
 * early, at no cost in throughput. It does not explain all of that heap: over long reads something
 * else keeps socket buffers alive too (not yet found; the investigation is in docs/perf-log.md).
 *
 * Needs `--expose-gc` (set by bin/assetfs.js); without it this does nothing.
 */
type Gc = (options?: { type?: 'minor' | 'major' }) => void;

/** Bytes received between two collections. */
export const GC_EVERY_BYTES = 4 * 1024 * 1024;

const gc = (globalThis as { gc?: Gc }).gc;
let received = 0;

/** Count `bytes` of a response body just consumed; collect the young generation every GC_EVERY_BYTES. */
export function noteBodyBytes(bytes: number): void {
  if (!gc) return;
  received += bytes;
  if (received < GC_EVERY_BYTES) return;
  received = 0;
  gc({ type: 'minor' });
}
