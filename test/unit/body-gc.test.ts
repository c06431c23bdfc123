import { afterEach, describe, expect, it, vi } from 'vitest';

describe('body-gc: a young-generation GC every few MiB of response bodies', () => {
  afterEach(() => {
    delete (globalThis as { gc?: unknown }).gc;
    vi.resetModules();
  });

  it('collects once per GC_EVERY_BYTES received, minor only', async () => {
    const gc = vi.fn();
    (globalThis as { gc?: unknown }).gc = gc;
    const { noteBodyBytes, GC_EVERY_BYTES } = await import('../../src/util/body-gc.js');
    const chunk = 64 * 1024;
    for (let i = 0; i < (3 * GC_EVERY_BYTES) / chunk; i++) noteBodyBytes(chunk);
    expect(gc).toHaveBeenCalledTimes(3);
    expect(gc).toHaveBeenCalledWith({ type: 'minor' });
  });

  it('does nothing when the runtime exposes no gc (node without --expose-gc)', async () => {
    const { noteBodyBytes, GC_EVERY_BYTES } = await import('../../src/util/body-gc.js');
    expect(() => noteBodyBytes(10 * GC_EVERY_BYTES)).not.toThrow();
  });
});
