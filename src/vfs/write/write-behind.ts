/**
 * Write-behind for one writable handle of a staged file. The kernel sends a file's FUSE writes one at a
 * time; answering each small one only after its own thread-pool write costs a round trip per request.
 * Contiguous small writes are instead copied into a chunk buffer and answered at once; full chunks
 * go to the staged file in order, one write at a time, with at most `maxQueued` chunks waiting (then
 * the writer waits: memory stays bounded at (maxQueued + 1) × chunk per handle).
 * A big write (at least `directBytes`: with libfuse 3 a `dd bs=1M` arrives in 1 MiB requests) goes
 * instead straight from the FUSE request's buffer to the file, after what is buffered: no copy in
 * JS and no fresh chunk pages, for one thread-pool round trip per MiB (docs/benchmarks.md).
 *
 * Invariants:
 *  - Every byte answered is in the file or in this object (buffer or queue), never neither.
 *  - Chunks reach the file in the order they were written, so overlapping rewrites land last-wins.
 *  - Whatever reads the file (read, stat, truncate, fsync, close, the upload) calls flush() first.
 *  - A failed write is reported by the next write() or flush() (as the kernel reports writeback errors
 *    at fsync and close), and the handle stays failed: its file is not to be uploaded.
 */
import type { FileHandle } from 'node:fs/promises';

export class WriteBehind {
  private buf: Buffer | undefined;
  private start = 0;
  private len = 0;
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private error: Error | undefined;
  private readonly waiters: Array<() => void> = [];

  constructor(
    private readonly fh: FileHandle,
    private readonly chunk = 4 * 1024 * 1024,
    private readonly maxQueued = 2,
    private readonly directBytes = 256 * 1024,
  ) {}

  async write(data: Buffer, length: number, position: number): Promise<number> {
    if (this.error) throw this.error;
    if (this.buf && (position !== this.start + this.len || this.len + length > this.chunk)) this.send();
    if (length >= Math.min(this.directBytes, this.chunk)) {
      // The request's buffer is valid until it is answered: the write completes first.
      await this.flush();
      await writeAll(this.fh, data.subarray(0, length), position);
      return length;
    }
    if (!this.buf) {
      this.buf = Buffer.allocUnsafe(this.chunk);
      this.start = position;
      this.len = 0;
    }
    data.copy(this.buf, this.len, 0, length);
    this.len += length;
    if (this.len === this.chunk) this.send();
    while (this.queued > this.maxQueued) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error) throw this.error;
    return length;
  }

  /** Everything written so far is in the file (or the first write error is thrown). */
  async flush(): Promise<void> {
    if (this.buf && this.len > 0) this.send();
    await this.tail;
    if (this.error) throw this.error;
  }

  private send(): void {
    const data = this.buf!.subarray(0, this.len);
    const at = this.start;
    this.buf = undefined;
    this.len = 0;
    this.queued++;
    this.tail = this.tail
      .then(() => (this.error ? undefined : writeAll(this.fh, data, at)))
      .catch((e: unknown) => {
        this.error ??= e instanceof Error ? e : new Error(String(e));
      })
      .finally(() => {
        this.queued--;
        this.waiters.shift()?.();
      });
  }
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('no progress writing the staged file'), { code: 'EIO' });
    done += bytesWritten;
  }
}
