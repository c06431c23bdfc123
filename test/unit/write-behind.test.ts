import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteBehind } from '../../src/vfs/write/write-behind.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';

/** A real file handle whose write() also records the Buffer objects it was handed. */
function recording(fh: FileHandle): { fh: FileHandle; written: Buffer[] } {
  const written: Buffer[] = [];
  const write = fh.write.bind(fh) as (...a: unknown[]) => Promise<unknown>;
  const proxy = new Proxy(fh, {
    get(target, prop) {
      if (prop === 'write') return (buf: Buffer, ...rest: unknown[]) => (written.push(buf), write(buf, ...rest));
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { fh: proxy, written };
}

describe('WriteBehind: big writes go straight to the staged file, small ones are gathered', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'assetfs-wb-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a 1 MiB write reaches the file from the request buffer itself (no copy in JS), after the small writes before it', async () => {
    const file = join(dir, 'staged');
    const real = await open(file, 'w+');
    const { fh, written } = recording(real);
    const wb = new WriteBehind(fh);
    const small = deterministicBytes('small', 4096);
    const big = deterministicBytes('big', 1024 * 1024);
    const request = Buffer.concat([big, Buffer.alloc(512)]); // a FUSE buffer may be longer than the write
    expect(await wb.write(small, small.length, 0)).toBe(small.length);
    expect(await wb.write(request, big.length, small.length)).toBe(big.length);
    // The big write was in the file when it was answered (the FUSE buffer is gone after the answer).
    expect(written.some((b) => b.buffer === request.buffer)).toBe(true);
    expect(written.filter((b) => b.buffer === request.buffer).every((b) => b.length <= big.length)).toBe(true);
    request.fill(0); // what the kernel's next request would do to the buffer
    await wb.flush();
    await real.close();
    expect((await readFile(file)).equals(Buffer.concat([small, big]))).toBe(true);
  });

  it('small contiguous writes are gathered into chunks and answered before they reach the file', async () => {
    const file = join(dir, 'staged');
    const real = await open(file, 'w+');
    const { fh, written } = recording(real);
    const wb = new WriteBehind(fh);
    const parts = Array.from({ length: 16 }, (_, i) => deterministicBytes(`p${i}`, 64 * 1024));
    let at = 0;
    for (const p of parts) {
      await wb.write(p, p.length, at);
      at += p.length;
    }
    expect(written.length).toBe(0); // 1 MiB gathered, nothing written yet
    await wb.flush();
    await real.close();
    expect(written.length).toBe(1);
    expect((await readFile(file)).equals(Buffer.concat(parts))).toBe(true);
  });
});
