import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { blockCrc32, crc32Implementation } from '../../src/cache/checksum.js';

describe('block checksum', () => {
  it('uses the native CRC-32 where its binary ships (linux x64 here)', () => {
    if (process.platform === 'linux' && process.arch === 'x64') expect(crc32Implementation).toBe('@node-rs/crc32');
    else expect(['@node-rs/crc32', 'zlib']).toContain(crc32Implementation);
  });

  it('equals zlib CRC-32 for any length and offset, so blocks written by earlier versions still verify', () => {
    const data = randomBytes(1024 * 1024 + 4097);
    for (const [start, end] of [[0, 0], [0, 1], [3, 4099], [1, 65537], [0, 1024 * 1024], [7, data.length]] as const) {
      const part = data.subarray(start, end);
      expect(blockCrc32(part)).toBe(zlibCrc32(part));
    }
    expect(blockCrc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('changes when one bit of a block changes', () => {
    const data = randomBytes(1024 * 1024);
    const before = blockCrc32(data);
    data[512 * 1024] = data[512 * 1024]! ^ 0x10;
    expect(blockCrc32(data)).not.toBe(before);
  });
});
