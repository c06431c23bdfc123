/**
 * Writes into every source of a real mount (the lab's platform emulators, Azurite and s3rver): mkdir, cp of a
 * multi-part file read back byte-exact from the platform after its upload, rsync -a of a small tree, a
 * watched folder (ignore list, conflict copy), and — where uploads have several parts — SIGKILL of the daemon in the middle of an upload, restart,
 * and completion from the parts the journal had confirmed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, journaledParts, mountDaemon, sh, until, type MountedDaemon } from '../helpers/mount.js';
import { startPlatformLab, type PlatformLab } from '@assetfs/lab/demo/lab.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';

const MiB = 1024 * 1024;

interface Case {
  /** The lab's source name (its folder in the mount). */
  platform: string;
  /** A folder to create and write into (mount-relative under the source). */
  dir: string;
  /** Whether folders nest below `dir` (rsync of a tree). */
  nested: boolean;
  /** Multi-part uploads: the SIGKILL test applies. */
  multipart: boolean;
  /** The remote folder a watched local folder syncs into. */
  sync: string;
}

const CASES: Case[] = [
  { platform: 'wordbee', dir: 'pr7214/19641/27665601/en/uploads', nested: true, multipart: false, sync: 'pr7214/19641/27665601/en/synced' },
  { platform: 'nomad', dir: 'media-bucket/Projects/2026/Uploads', nested: true, multipart: true, sync: 'media-bucket/Projects/2026/Synced' },
  // AMS: mkdir at the top creates an asset; nothing nests inside one.
  { platform: 'ams', dir: 'Launch Uploads', nested: false, multipart: true, sync: 'Launch Synced' },
  // MK.IO: an existing asset (on Azure storage), and a folder below it that is only a name prefix.
  { platform: 'mkio', dir: 'launch-teaser/uploads', nested: true, multipart: true, sync: 'launch-teaser/synced' },
  { platform: 'mediahub', dir: 'pl-launch/incoming-uploads', nested: true, multipart: true, sync: 'pl-launch/synced' },
  // The plain stores too: Azure staged blocks on Azurite, S3 multipart on s3rver.
  { platform: 'blob', dir: 'incoming/batch', nested: true, multipart: true, sync: 'synced' },
  { platform: 's3', dir: 'incoming/batch', nested: true, multipart: true, sync: 'synced' },
];

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
let lab: PlatformLab;
let work: string;

interface UploadStatus {
  uploads: { active: unknown[]; queued: unknown[]; failed: { remote: string; lastError: string }[]; recent: { remote: string; state: string }[] };
}

const status = async (d: MountedDaemon) => JSON.parse(await sh(`node ${BIN} status --json --socket ${join(d.dir, 'cache', 'control.sock')}`)) as UploadStatus;

/** Waits until an upload whose remote path matches each of `remotes` is done; fails on a failed one. */
async function settled(d: MountedDaemon, remotes: (string | RegExp)[]): Promise<string[]> {
  const hit = (want: string | RegExp, remote: string) => (typeof want === 'string' ? remote === want : want.test(remote));
  let found: string[] = [];
  await until(async () => {
    const s = await status(d);
    const failed = s.uploads.failed.find((f) => remotes.some((r) => hit(r, f.remote)));
    if (failed) throw new Error(`upload of ${failed.remote} failed: ${failed.lastError}`);
    found = remotes.map((r) => s.uploads.recent.find((j) => hit(r, j.remote) && j.state === 'done')?.remote ?? '');
    return found.every(Boolean);
  }, `uploads of ${remotes.join(', ')}`, 120_000);
  return found;
}

beforeAll(async () => {
  lab = await startPlatformLab({ log: silentLogger, bigFileBytes: 1024 * 1024 });
  work = await mkdtemp(join(tmpdir(), 'assetfs-pwrites-'));
}, 300_000);
afterAll(async () => {
  await lab?.stop();
  await rm(work, { recursive: true, force: true });
});

describe.each(CASES)('writes into $platform', (c) => {
  let d: MountedDaemon;
  const at = (p: string) => join(d.mountpoint, c.platform, c.dir, p);
  const watched = () => join(work, `watched-${c.platform}`);
  beforeAll(async () => {
    await mkdir(watched(), { recursive: true });
    await writeFile(join(watched(), 'take.txt'), 'ours v1\n');
    for (const junk of ['.take.txt.swp', '~$script.docx', '.DS_Store', 'movie.mp4.part']) await writeFile(join(watched(), junk), 'junk');
    d = await mountDaemon({
      sources: lab.sources,
      metadataTtl: '2s',
      uploads: { writeBack: '300ms' },
      sync: [{ local: watched(), remote: `${c.platform}/${c.sync}`, stableFor: '300ms' }],
    });
  });
  afterAll(async () => d?.stop());

  it('mkdir, then cp of a file uploads it; read back from the platform it is byte-exact', async () => {
    const data = deterministicBytes(`pw-${c.platform}`, 18 * MiB + 5);
    await writeFile(join(work, `${c.platform}.bin`), data);
    await sh(`mkdir -p ${q(join(d.mountpoint, c.platform, c.dir))} && cp ${work}/${c.platform}.bin ${q(at('clip.bin'))}`);
    await settled(d, [`${c.platform}/${c.dir}/clip.bin`]);
    await sh('echo 1 > /proc/sys/vm/drop_caches');
    expect((await sh(`sha256sum ${q(at('clip.bin'))}`)).split(' ')[0]).toBe(sha256(data));
    expect(d.logs()).toMatch(/upload complete/);
  });

  it('rsync -a of a small tree uploads each file under its final name', async () => {
    const tree = join(work, `tree-${c.platform}`);
    await mkdir(join(tree, 'sub'), { recursive: true });
    await writeFile(join(tree, 'a.srt'), '1\n00:00:01,000 --> 00:00:02,000\nHello\n');
    await writeFile(join(tree, c.nested ? 'sub/b.txt' : 'b.txt'), 'bee\n');
    const rel = c.nested ? ['a.srt', 'sub/b.txt'] : ['a.srt', 'b.txt'];
    await sh(`rsync -a ${tree}/${c.nested ? '' : '*.*'} ${q(join(d.mountpoint, c.platform, c.dir))}/`);
    await settled(d, rel.map((r) => `${c.platform}/${c.dir}/${r}`));
    await sh('echo 1 > /proc/sys/vm/drop_caches');
    expect(await sh(`cat ${q(at(rel[1]!))}`)).toBe('bee\n');
    expect(await sh(`ls -a ${q(join(d.mountpoint, c.platform, c.dir))}`)).not.toMatch(/\.a\.srt\.\w{6}/);
  });

  it('a watched folder syncs into it without the ignored names; a remote change made meanwhile gets a conflict copy', async () => {
    const remote = (name: string) => join(d.mountpoint, c.platform, c.sync, name);
    await settled(d, [`${c.platform}/${c.sync}/take.txt`]);
    await sh('echo 1 > /proc/sys/vm/drop_caches');
    expect(await sh(`cat ${q(remote('take.txt'))}`)).toBe('ours v1\n');
    expect((await sh(`ls -A ${q(join(d.mountpoint, c.platform, c.sync))}`)).trim()).toBe('take.txt');
    // Someone else replaces the file (here through the mount), then we change ours locally.
    await sh(`printf 'theirs\\n' > ${q(remote('take.txt'))}`);
    await until(async () => (await status(d)).uploads.recent.filter((j) => j.remote === `${c.platform}/${c.sync}/take.txt`).length >= 2, 'their upload');
    await writeFile(join(watched(), 'take.txt'), 'ours v2\n');
    const [copy] = await settled(d, [new RegExp(`^${c.platform}/${c.sync}/take[.-]conflict-[A-Za-z0-9_-]+-\\d{8}T\\d{6}Z\\.txt$`)]);
    await new Promise((r) => setTimeout(r, 2_500)); // the metadata TTL
    await sh('echo 1 > /proc/sys/vm/drop_caches');
    expect(await sh(`cat ${q(remote('take.txt'))}`)).toBe('theirs\n');
    expect(await sh(`cat ${q(join(d.mountpoint, copy!))}`)).toBe('ours v2\n');
  });
});

describe.each(CASES.filter((c) => c.multipart))('SIGKILL during an upload into $platform', (c) => {
  it('a restarted daemon resumes from the confirmed parts', async () => {
    const cacheDir = join(work, `kill-${c.platform}`);
    const cfg = { cacheDir, sources: lab.sources, uploads: { writeBack: '100ms', parallelParts: 1, partsPerFile: 1 } };
    const data = deterministicBytes(`kill-${c.platform}`, 120 * MiB + 3);
    await writeFile(join(work, `kill-${c.platform}.bin`), data);
    const first = await mountDaemon(cfg);
    let confirmed: number[] = [];
    try {
      await sh(`mkdir -p ${q(join(first.mountpoint, c.platform, c.dir))} && cp ${work}/kill-${c.platform}.bin ${q(join(first.mountpoint, c.platform, c.dir, 'killed.bin'))}`);
      await until(async () => {
        confirmed = journaledParts(cacheDir);
        return confirmed.length >= 2;
      }, 'two confirmed parts');
      await first.kill();
    } finally {
      await first.stop();
    }
    const second = await mountDaemon(cfg);
    try {
      await until(async () => /upload complete/.test(second.logs()), 'the resumed upload', 180_000);
      const resumed = /"resumeParts":(\d+)/.exec(second.logs());
      expect(Number(resumed?.[1])).toBeGreaterThanOrEqual(confirmed.length);
      await sh('echo 1 > /proc/sys/vm/drop_caches');
      expect((await sh(`sha256sum ${q(join(second.mountpoint, c.platform, c.dir, 'killed.bin'))}`)).split(' ')[0]).toBe(sha256(data));
    } finally {
      await second.stop();
    }
  });
});
