/**
 * The log file (`log.file`), rotated by size the way logrotate and peers' log files are: the live file
 * keeps its configured name, older ones are `FILE.1` (newest) … `FILE.N`.
 *
 * Invariants:
 *  - Every file stays within `maxSize` bytes (a single line larger than that gets a file of its own).
 *  - A line is never split across files, none is lost, and the order holds: the rotation point is
 *    chosen between two `write` calls (pino writes one whole record per call). Lines written before
 *    it go to the old inode even when they are still buffered: renaming a file does not move an open
 *    descriptor, so the previous writer drains into `FILE.1` and closes while the new one appends to
 *    a fresh `FILE`.
 *  - At most `maxFiles` files exist: the live one and `maxFiles - 1` older ones.
 *  - Files are created 0600 in a 0700 folder when it is made (logs name paths and sources); an
 *    existing log file readable by others is narrowed to 0600 when opened.
 *  - Each writer is pino's own SonicBoom destination, which pino flushes synchronously on process
 *    exit; `flushSync` writes everything buffered now (the fatal-exit path, logger.ts).
 *
 * Why not a library: rotating-file-stream (logrotate naming) is an asynchronous Writable with no
 * synchronous flush: lines buffered when the process exits are lost (measured: of 236 401 lines
 * written before a `process.exit`, 640 reached the file). pino-roll rotates only on SonicBoom's
 * `drain`, which a steady stream of lines never lets happen (measured: a 1 MB limit produced a 133 MB
 * file), and its live file changes name at every rotation (`FILE.1.log`, `FILE.2.log`…), which breaks
 * `tail -F FILE` and every peer's convention. This file only adds the size count and the renames.
 */
import { fchmodSync, fstatSync, mkdirSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type DestinationStream } from 'pino';

type Writer = ReturnType<typeof pino.destination>;

export interface LogFileOptions {
  file: string;
  /** Rotate before a line would take the live file past this many bytes; 0: never rotate. */
  maxSize: number;
  /** Files kept, the live one included (at least 1). */
  maxFiles: number;
}

export class RotatingLogFile implements DestinationStream {
  private writer: Writer;
  /** Bytes in the live file: its size when opened, plus every line since. */
  private size = 0;
  /** Writers of rotated files still draining their buffer: flushed with the live one. */
  private readonly draining = new Set<Writer>();

  constructor(private readonly opts: LogFileOptions) {
    mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
    this.writer = this.open();
  }

  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.opts.maxSize > 0 && this.size > 0 && this.size + bytes > this.opts.maxSize) this.rotate();
    this.size += bytes;
    this.writer.write(line);
  }

  /** Writes every buffered line now, to whichever file it belongs to (process exit, fatal errors). */
  flushSync(): void {
    for (const w of [...this.draining, this.writer]) {
      try {
        w.flushSync();
      } catch {
        // a writer still opening or already closed has nothing to flush
      }
    }
  }

  flush(cb?: (err?: Error | null) => void): void {
    this.writer.flush(cb ?? (() => undefined));
  }

  /**
   * Opens `file` again: after logrotate (or a person) moved it away, lines go to a new file under the
   * configured name. SIGHUP does this (logger.ts).
   */
  reopen(): void {
    this.retire(this.writer);
    this.writer = this.open();
  }

  /** Flushes and closes every file; resolves once they are closed. */
  async close(): Promise<void> {
    const all = [...this.draining, this.writer];
    await Promise.all(all.map((w) => new Promise<void>((done) => {
      if ((w as unknown as { destroyed?: boolean }).destroyed) return done();
      w.once('close', () => done());
      w.once('error', () => done());
      w.end();
    })));
  }

  private open(): Writer {
    const fd = openSync(this.opts.file, 'a', 0o600);
    const st = fstatSync(fd);
    if ((st.mode & 0o077) !== 0) {
      try {
        fchmodSync(fd, st.mode & 0o700);
      } catch {
        // not ours to change (another owner): keep logging
      }
    }
    this.size = st.size;
    return pino.destination({ dest: fd, sync: false });
  }

  /** FILE.(n-1) → FILE.n … FILE → FILE.1, then a fresh FILE. */
  private rotate(): void {
    const { file, maxFiles } = this.opts;
    try {
      const gone = (e: unknown) => {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // a missing file (never made, or removed by hand) is fine
      };
      for (let n = maxFiles - 1; n >= 1; n--) {
        try {
          renameSync(n === 1 ? file : `${file}.${n - 1}`, `${file}.${n}`);
        } catch (e) {
          gone(e);
        }
      }
      if (maxFiles === 1) {
        try {
          unlinkSync(file);
        } catch (e) {
          gone(e);
        }
      }
    } catch (e) {
      // Keep appending to the live file rather than lose lines; try again after another maxSize.
      process.stderr.write(`assetfs: cannot rotate the log file ${file}: ${(e as Error).message}\n`);
      this.size = 0;
      return;
    }
    this.reopen();
  }

  private retire(w: Writer): void {
    this.draining.add(w);
    w.once('close', () => this.draining.delete(w));
    w.end();
  }
}
