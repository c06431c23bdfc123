/**
 * Page-aligned memory, for O_DIRECT file I/O (the kernel requires the buffer's address, the file
 * offset and the length to be multiples of the device's block size).
 *
 * Node hands out no aligned Buffers: a large Buffer starts 16 bytes past a page boundary (malloc's
 * chunk header). A WebAssembly.Memory, though, starts on a page boundary (V8 maps it with mmap). Its
 * pages are only touched when used, and it is never grown, so views of it stay valid.
 */
export const DIRECT_IO_ALIGN = 4096;

/** Largest single aligned allocation: a 32-bit WebAssembly memory holds at most 65536 pages of 64 KiB. */
export const MAX_ALIGNED_BYTES = 2 ** 31;

const WASM_PAGE = 65536;

// The ES2022 lib has no WebAssembly types (they come with the DOM lib); this is the one use.
declare const WebAssembly: { Memory: new (d: { initial: number; maximum?: number }) => { buffer: ArrayBuffer } };

/** The memories alignedBuffer handed out: a view of one starts on a page when its offset is a page multiple. */
const alignedMemories = new WeakSet<ArrayBufferLike>();

/** `bytes` (≤ MAX_ALIGNED_BYTES) of page-aligned, zero-filled memory. Throws when it can't be had. */
export function alignedBuffer(bytes: number): Buffer {
  if (!(bytes > 0) || bytes > MAX_ALIGNED_BYTES) throw new RangeError(`aligned buffer of ${bytes} bytes`);
  const pages = Math.ceil(bytes / WASM_PAGE);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  alignedMemories.add(memory.buffer);
  return Buffer.from(memory.buffer, 0, bytes);
}

/** Whether `buf` can be read or written with O_DIRECT as it is: page-aligned start and length. */
export function isDirectIoReady(buf: Buffer): boolean {
  return alignedMemories.has(buf.buffer) && buf.byteOffset % DIRECT_IO_ALIGN === 0 && buf.length % DIRECT_IO_ALIGN === 0;
}
