/**
 * Readahead as the storage server sees it: a sequential read goes out as few large ranged GETs,
 * random small reads only as block-sized ones (counted at the proxy in front of s3rver).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deterministicBytes, sampleMp4WithMoovAtEnd, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { mountDevice } from '../../src/fuse/kernel-readahead.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, mountDaemon, sh, shResult, until, type MountedDaemon } from '../helpers/mount.js';

const MiB = 1024 * 1024;
const SEQ = deterministicBytes('ra-seq', 48 * MiB);
const RND = deterministicBytes('ra-rnd', 48 * MiB);
/** An MP4-shaped file: ftyp, a 20 MiB mdat, then the moov box at the end (as encoders write it). */
function mp4WithMoovAtEnd(): Buffer {
  const boxHeader = (type: string, total: number) => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(total, 0);
    h.write(type, 4, 'latin1');
    return h;
  };
  const mdat = deterministicBytes('ra-mdat', 20 * MiB);
  const moov = deterministicBytes('ra-moov', 300 * 1024);
  return Buffer.concat([boxHeader('ftyp', 24), Buffer.alloc(16), boxHeader('mdat', 8 + mdat.length), mdat, boxHeader('moov', 8 + moov.length), moov]);
}
const MP4 = mp4WithMoovAtEnd();
let storage: ProxiedBucket;
let d: MountedDaemon;

beforeAll(async () => {
  storage = await startProxiedBucket('media', { files: [{ path: 'seq.bin', data: SEQ }, { path: 'rnd.bin', data: RND }, { path: 'movie.mp4', data: MP4 }] });
  d = await mountDaemon({
    metadataTtl: '2s',
    cache: { memory: '256MiB', disk: 0 },
    sources: [storage.source()],
  });
});
afterAll(async () => {
  await d?.stop();
  await storage?.close();
});

const rangeLen = (r: string | undefined) => {
  const m = /bytes=(\d+)-(\d+)/.exec(r ?? '');
  return m ? Number(m[2]) - Number(m[1]) + 1 : 0;
};
const getsOf = (name: string) => storage.proxy.requests().filter((r) => r.method === 'GET' && r.path.endsWith(`/${name}`));

describe('readahead', () => {
  it('a sequential read of 48 MiB goes out as few, mostly large ranged GETs', async () => {
    storage.proxy.clearLog();
    expect((await sh(`dd if=${d.mountpoint}/s3/seq.bin bs=1M status=none | sha256sum`)).split(' ')[0]).toBe(sha256(SEQ));
    const gets = getsOf('seq.bin');
    const bytes = gets.reduce((n, r) => n + rangeLen(r.range), 0);
    expect(bytes).toBe(SEQ.length); // every byte once, no overlap
    expect(gets.length).toBeLessThanOrEqual(20); // 48 blocks of 1 MiB, merged into parts of up to 16 MiB
    expect(gets.filter((r) => rangeLen(r.range) >= 4 * MiB).length).toBeGreaterThanOrEqual(3);
  });

  it('random 4 KiB reads fetch only the blocks they touch, one block per GET', async () => {
    storage.proxy.clearLog();
    const offsets = [37, 5, 22, 41, 13, 30, 2, 46].map((b) => b * MiB + 12345);
    for (const off of offsets) {
      const got = await sh(`dd if=${d.mountpoint}/s3/rnd.bin bs=4096 count=1 iflag=skip_bytes skip=${off} status=none | sha256sum`);
      expect(got.split(' ')[0]).toBe(sha256(RND.subarray(off, off + 4096)));
    }
    const gets = getsOf('rnd.bin');
    expect(gets.length).toBe(offsets.length);
    for (const g of gets) expect(rangeLen(g.range)).toBe(MiB);
  });

  it('opening an MP4 prefetches its moov box at the end, and nothing in between', async () => {
    storage.proxy.clearLog();
    const moovStart = MP4.length - (300 * 1024 + 8);
    expect((await sh(`head -c 64 ${d.mountpoint}/s3/movie.mp4 | sha256sum`)).split(' ')[0]).toBe(sha256(MP4.subarray(0, 64)));
    const covered = () =>
      getsOf('movie.mp4').some((r) => {
        const m = /bytes=(\d+)-(\d+)/.exec(r.range ?? '');
        return !!m && Number(m[1]) <= moovStart && Number(m[2]) >= MP4.length - 1;
      });
    for (let i = 0; i < 100 && !covered(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(covered()).toBe(true);
    const fetched = getsOf('movie.mp4').reduce((n, r) => n + rangeLen(r.range), 0);
    expect(fetched).toBeLessThanOrEqual(4 * MiB); // head block(s) + the moov's block, not the 20 MiB mdat
  });

  // ffprobe is Debian's ffmpeg; CI runs on a machine that has it (bench/tools.ts installs it), elsewhere this says skipped.
  const hasFfprobe = async () => (await shResult('command -v ffprobe')).code === 0;
  it('ffprobe of a 400 MiB MP4 with its moov at the end fetches at most 1 % of it', async (ctx) => {
    if (!(await hasFfprobe())) ctx.skip();
    const big = await sampleMp4WithMoovAtEnd(400 * MiB);
    await storage.seed([{ path: 'long.mp4', data: big }], 1);
    await new Promise((r) => setTimeout(r, 2_500)); // the metadata TTL: the root listing was cached before
    storage.proxy.clearLog();
    const out = await sh(`ffprobe -v error -show_entries stream=codec_type -of csv=p=0 ${d.mountpoint}/s3/long.mp4`);
    expect(out).toMatch(/video/);
    const fetched = getsOf('long.mp4').reduce((n, r) => n + rangeLen(r.range), 0);
    expect(fetched).toBeGreaterThan(0);
    expect(fetched / big.length).toBeLessThanOrEqual(0.01);
  });
});

describe('readahead with a memory tier smaller than its default window', () => {
  it('a sequential read fetches every byte once: prefetched blocks are not evicted before they are read', async () => {
    // 16 MiB of memory, the default 64 MiB window: unclamped, the blocks fetched ahead evict each other.
    const small = await mountDaemon({
      cache: { memory: '16MiB', disk: 0 },
      sources: [storage.source()],
    });
    try {
      storage.proxy.clearLog();
      expect((await sh(`dd if=${small.mountpoint}/s3/seq.bin bs=1M status=none | sha256sum`)).split(' ')[0]).toBe(sha256(SEQ));
      expect(getsOf('seq.bin').reduce((n, r) => n + rangeLen(r.range), 0)).toBe(SEQ.length);
    } finally {
      await small.stop();
    }
  });
});

describe('scan resistance: a sequential read streams through a small part of the memory tier', () => {
  it('blocks used otherwise survive a sequential read larger than the tier, which leaves little behind', async () => {
    // 32 MiB of memory (an 8 MiB window), the disk tier on, a 48 MiB sequential read.
    const m = await mountDaemon({
      cache: { memory: '32MiB' },
      sources: [storage.source()],
    });
    const memory = async () =>
      (JSON.parse(await sh(`node ${BIN} status --json --socket ${join(m.dir, 'cache', 'control.sock')}`)) as { cache: { memory: { bytes: number; hits: number; misses: number } } }).cache.memory;
    // O_DIRECT: every read reaches the daemon, whatever the kernel's page cache holds.
    const readRandom = async (offsets: number[]) => {
      for (const off of offsets) {
        const got = await sh(`dd if=${m.mountpoint}/s3/rnd.bin bs=4096 count=1 iflag=skip_bytes,direct skip=${off} status=none | sha256sum`);
        expect(got.split(' ')[0]).toBe(sha256(RND.subarray(off, off + 4096)));
      }
    };
    try {
      const offsets = [5, 17, 29, 41].map((b) => b * MiB + 4096);
      await readRandom(offsets);
      expect((await sh(`dd if=${m.mountpoint}/s3/seq.bin bs=1M status=none | sha256sum`)).split(' ')[0]).toBe(sha256(SEQ));
      const after = await memory();
      // The random blocks, the last 2 MiB of the stream (not yet passed) and a 4 MiB tail of demoted
      // blocks: a plain LRU would hold 32 MiB of seq.bin here, the random blocks evicted.
      expect(after.bytes).toBeLessThanOrEqual(12 * MiB);
      storage.proxy.clearLog();
      await readRandom(offsets);
      const again = await memory();
      expect(again.hits - after.hits).toBeGreaterThanOrEqual(offsets.length);
      expect(again.misses).toBe(after.misses);
      // What left memory is on disk: reading the file again costs the storage server nothing.
      expect((await sh(`dd if=${m.mountpoint}/s3/seq.bin bs=1M iflag=direct status=none | sha256sum`)).split(' ')[0]).toBe(sha256(SEQ));
      expect(storage.proxy.requests().filter((r) => r.method === 'GET').length).toBe(0);
    } finally {
      await m.stop();
    }
  });
});

describe('the kernel side', () => {
  it("sets the mount's kernel readahead to fuse.readahead (1 MiB by default), so reads reach the daemon in requests of up to 1 MiB", async () => {
    const device = await mountDevice(d.mountpoint);
    expect(device).toMatch(/^\d+:\d+$/);
    const kb = Number((await readFile(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8')).trim());
    // Only root may raise it; CI runs as root.
    expect(kb).toBe(process.getuid?.() === 0 ? 1024 : 128);
  });

  it('max_background is 64 by default (congestion threshold 48); fuse.maxBackground sets it, and a max_background in fuse.options wins', async () => {
    // The kernel's own values, in the fuse control filesystem (mounted here when it is not yet).
    await sh('mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections');
    const kernelSays = async (m: MountedDaemon) => {
      const minor = (await mountDevice(m.mountpoint))!.split(':')[1];
      const read = async (f: string) => Number((await readFile(`/sys/fs/fuse/connections/${minor}/${f}`, 'utf8')).trim());
      return { maxBackground: await read('max_background'), congestion: await read('congestion_threshold') };
    };
    expect(await kernelSays(d)).toEqual({ maxBackground: 64, congestion: 48 });
    for (const [fuse, want] of [[{ maxBackground: 20 }, { maxBackground: 20, congestion: 15 }], [{ maxBackground: 20, options: ['max_background=12'] }, { maxBackground: 12, congestion: 9 }]] as const) {
      const m = await mountDaemon({ fuse, cache: { disk: 0 }, sources: [storage.directSource()] });
      try {
        expect(await kernelSays(m), JSON.stringify(fuse)).toEqual(want);
      } finally {
        await m.stop();
      }
    }
  });

  it('attribute and entry timeouts follow metadataTtl: repeated stats stay in the kernel for the TTL, and reach the daemon after it', async () => {
    await storage.seed([{ path: 'ttl/a.txt', data: Buffer.from('a') }, { path: 'ttl/b.txt', data: Buffer.from('b') }, { path: 'ttl/c.txt', data: Buffer.from('c') }]);
    // libfuse's debug output names each LOOKUP and getattr the kernel sends, with its path, in order.
    const asked = (m: MountedDaemon, file: string) => m.logs().split('\n').filter((l) => new RegExp(`^(LOOKUP|getattr\\[[^\\]]*\\]) /s3/ttl/${file.replace('.', '\\.')}$`).test(l)).length;
    const mountWithTtl = (ttl: string) =>
      mountDaemon({
        metadataTtl: ttl,
        fuse: { options: ['debug'] },
        cache: { disk: 0 },
        sources: [storage.directSource()],
      });
    const long = await mountWithTtl('30s');
    try {
      await sh(`stat ${long.mountpoint}/s3/ttl/a.txt`);
      await until(async () => asked(long, 'a.txt') > 0, 'the first lookup of a.txt');
      const first = asked(long, 'a.txt');
      await new Promise((r) => setTimeout(r, 2_200)); // past libfuse's default timeouts (1 s), within the TTL
      for (let i = 0; i < 5; i++) await sh(`stat ${long.mountpoint}/s3/ttl/a.txt`);
      // b.txt is asked after them: once its lookup shows, anything the stats of a.txt sent would show too.
      await sh(`stat ${long.mountpoint}/s3/ttl/b.txt`);
      await until(async () => asked(long, 'b.txt') > 0, 'the lookup of b.txt');
      expect(asked(long, 'a.txt')).toBe(first);
    } finally {
      await long.stop();
    }
    const short = await mountWithTtl('1s');
    try {
      await sh(`stat ${short.mountpoint}/s3/ttl/c.txt`);
      await until(async () => asked(short, 'c.txt') > 0, 'the first lookup of c.txt');
      const first = asked(short, 'c.txt');
      await new Promise((r) => setTimeout(r, 2_200)); // past the 1 s attribute and entry timeouts
      await sh(`stat ${short.mountpoint}/s3/ttl/c.txt`);
      await until(async () => asked(short, 'c.txt') > first, 'c.txt asked again after its timeout', 10_000);
    } finally {
      await short.stop();
    }
  });

  it('ls -l of a 600-entry folder: every entry comes with its attributes (READDIRPLUS), none is looked up alone', async () => {
    const names = Array.from({ length: 600 }, (_, i) => `dir/e-${String(i).padStart(4, '0')}.txt`);
    await storage.seed(names.map((path, i) => ({ path, data: Buffer.from(String(i)) })), 16);
    // libfuse's debug output names every request the kernel sends.
    const m = await mountDaemon({
      fuse: { options: ['debug'] },
      cache: { disk: 0 },
      sources: [storage.directSource()],
    });
    try {
      const listed = (await sh(`ls -l ${m.mountpoint}/s3/dir | grep -c '^-'`)).trim();
      expect(Number(listed)).toBe(600);
      const ops = [...m.logs().matchAll(/opcode: (\w+)/g)].map((x) => x[1]);
      expect(ops.filter((o) => o === 'READDIRPLUS').length).toBeGreaterThan(1); // paged: offsets across requests
      expect(ops.filter((o) => o === 'LOOKUP').length).toBeLessThanOrEqual(2); // s3 and dir themselves
    } finally {
      await m.stop();
    }
  });
});
