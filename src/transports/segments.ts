/**
 * Consecutive buffers written as one: the segments of one range (e.g. the cache's block buffers, so a
 * body lands where it will be cached, with no copy and no fresh allocation). Writes only move forward.
 */
export class Segments {
  readonly length: number;
  private index = 0;
  /** Offset in the whole at which parts[index] starts. */
  private base = 0;

  constructor(private readonly parts: readonly Buffer[]) {
    this.length = parts.reduce((n, p) => n + p.length, 0);
  }

  /** Copy `src` to offset `at` of the whole; `at` is never below the previous write's start. */
  set(src: Buffer, at: number): void {
    let done = 0;
    while (done < src.length) {
      while (at + done >= this.base + this.parts[this.index]!.length) this.base += this.parts[this.index++]!.length;
      const part = this.parts[this.index]!;
      done += src.copy(part, at + done - this.base, done, Math.min(src.length, done + part.length - (at + done - this.base)));
    }
  }
}
