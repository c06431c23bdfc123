import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountDevice, setKernelReadahead } from '../../src/fuse/kernel-readahead.js';

describe('kernel readahead of a mount', () => {
  it('finds the device of a mount point in /proc/self/mountinfo, and nothing for a plain folder', async () => {
    expect(await mountDevice('/')).toMatch(/^\d+:\d+$/);
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-ra-'));
    try {
      expect(await mountDevice(dir)).toBeUndefined();
      expect(await setKernelReadahead(dir, 1024)).toEqual({ reason: 'mount not found in /proc/self/mountinfo' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
