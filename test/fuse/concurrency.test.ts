/**
 * Concurrency without decay (issue 5), at the depth it was fixed: libfuse starts a worker thread for
 * each operation in flight beyond the idle ones and ends workers above 10 idle, and upstream
 * fuse-native allocated new locals (a Buffer and a uv_async handle on the event loop) for every worker
 * it ever saw, so bursts left the daemon slower for good. The patched addon (vendor/fuse-native,
 * patches 1 and 6) hands an exited worker's locals to the next new one. Here, bursts of readers whose
 * first GET the proxy holds back, so that every reader's request keeps a worker busy at once:
 *   - each burst really reaches that many workers, and they end after it (threads, /proc);
 *   - every reader gets its exact bytes;
 *   - the locals ever allocated stay at the most workers alive at once, not their sum over bursts.
 * The speed side (one reader's rate before and after a 60 s burst) is bench/burst.ts: no timed
 * assertions here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, mountDaemon, sh, until, type MountedDaemon } from '../helpers/mount.js';

const READERS = 24;
const ROUNDS = 3;
/** How long the proxy holds each reader's first GET: every reader has its request in flight by then. */
const HOLD_MS = 4_000;
const FILE = 64 * 1024;
const name = (round: number, i: number) => `burst/r${round}-f${String(i).padStart(2, '0')}.bin`;
const data = (round: number, i: number) => deterministicBytes(name(round, i), FILE);

let storage: ProxiedBucket;
let d: MountedDaemon;

beforeAll(async () => {
  const files = [];
  for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < READERS; i++) files.push({ path: name(r, i), data: data(r, i) });
  storage = await startProxiedBucket('media', { files, parallel: 16 });
  d = await mountDaemon({
    metadataTtl: '10m', // the listing taken before the bursts answers every lookup: only the block GETs are held
    cache: { disk: 0 },
    // The kernel sends O_DIRECT reads as background requests (async DIO), at most max_background at
    // once: 64 (the default, set here in case that changes), so every reader's read is in flight together.
    fuse: { maxBackground: 64 },
    sources: [storage.source()],
  });
}, 120_000);
afterAll(async () => {
  await d?.stop();
  await storage?.close();
});

const threads = async () => (await readdir(`/proc/${d.child.pid}/task`)).length;
const status = async () => JSON.parse(await sh(`node ${BIN} status --json --config ${d.dir}/config.json`)) as { fuse: { workerLocals: number } };

describe('bursts of concurrent readers', () => {
  it('each burst reaches one worker per reader and its workers end after it; the workers\' locals stay at the most alive at once', async () => {
    expect((await sh(`ls ${d.mountpoint}/s3/burst | wc -l`)).trim()).toBe(String(ROUNDS * READERS));
    const perRound: Array<{ peak: number; after: number; workerLocals: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      storage.proxy.slowNext(READERS, HOLD_MS, 'GET');
      const readers = Array.from({ length: READERS }, (_, i) => sh(`dd if=${d.mountpoint}/s3/${name(r, i)} bs=64k iflag=direct status=none | sha256sum`));
      // While the GETs are held, every reader's read waits in its own libfuse worker.
      let peak = 0;
      const sampling = (async () => {
        for (let t = 0; t < HOLD_MS / 100 - 5; t++) {
          peak = Math.max(peak, await threads());
          await new Promise((res) => setTimeout(res, 100));
        }
      })();
      const sums = await Promise.all(readers);
      await sampling;
      sums.forEach((s, i) => expect(s.split(' ')[0], name(r, i)).toBe(sha256(data(r, i))));
      // libfuse keeps 10 workers idle and ends the others as their requests finish.
      await until(async () => (await threads()) <= peak - (READERS - 12), `the burst's workers to end (round ${r})`, 30_000);
      perRound.push({ peak, after: await threads(), workerLocals: (await status()).fuse.workerLocals });
    }
    const seen = JSON.stringify(perRound);
    // The first burst had a worker per reader (each allocated its locals)…
    expect(perRound[0]!.workerLocals, seen).toBeGreaterThanOrEqual(READERS);
    // …and every later one started at least READERS - 12 workers anew, after the last one's ended.
    for (let r = 1; r < ROUNDS; r++) expect(perRound[r]!.peak - perRound[r - 1]!.after, seen).toBeGreaterThanOrEqual(READERS - 12);
    // Upstream, each of those new workers allocated locals again: after three bursts, at least
    // READERS + 2 × (READERS - 12). Reused, they stay at the most workers alive at once: one per
    // reader and libfuse's spare one (a small margin for the mount's own lookups).
    expect(Math.max(...perRound.map((x) => x.workerLocals)), seen).toBeLessThanOrEqual(READERS + 4);
  }, 180_000);
});
