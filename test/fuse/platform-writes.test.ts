/**
 * Writes into the platform sources of a real mount (the lab's emulators), per platform: mkdir, cp of a
 * multi-part file read back byte-exact from the platform after its upload, rsync -a of a small tree,
 * and — where uploads have several parts — SIGKILL of the daemon in the middle of an upload, restart,
 * and completion from the parts the journal had confirmed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, mountDaemon, sh, until, type MountedDaemon } from '../helpers/mount.js';
import { startPlatformLab, type PlatformLab, type PlatformName } from '../../src/demo/lab.js';
import { deterministicBytes, sha256 } from '../../src/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';

const MiB = 1024 * 1024;

interface Case {
  platform: PlatformName;
  /** A folder to create and write into (mount-relative under the source). */
  dir: string;
  /** Whether folders nest below `dir` (rsync of a tree). */
  nested: boolean;
  /** Multi-part uploads: the SIGKILL test applies. */
  multipart: boolean;
}

const CASES: Case[] = [
  { platform: 'wordbee', dir: 'pr7214/19641/27665601/en/uploads', nested: true, multipart: false },
];

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
let lab: PlatformLab;
let work: string;

interface UploadStatus {
  uploads: { active: unknown[]; queued: unknown[]; failed: { remote: string; lastError: string }[]; recent: { remote: string; state: string }[] };
}

async function settled(d: MountedDaemon, remotes: string[]): Promise<void> {
  await until(async () => {
    const s = JSON.parse(await sh(`node ${BIN} status --json --socket ${join(d.dir, 'cache', 'control.sock')}`)) as UploadStatus;
    const failed = s.uploads.failed.find((f) => remotes.includes(f.remote));
    if (failed) throw new Error(`upload of ${failed.remote} failed: ${failed.lastError}`);
    return remotes.every((r) => s.uploads.recent.some((j) => j.remote === r && j.state === 'done'));
  }, `uploads of ${remotes.join(', ')}`, 120_000);
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
  beforeAll(async () => {
    d = await mountDaemon({ sources: lab.sources, metadataTtl: '2s', uploads: { writeBack: '300ms' } });
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
        const db = new Database(join(cacheDir, 'journal.db'), { readonly: true, fileMustExist: true });
        try {
          confirmed = (db.prepare('SELECT number FROM parts ORDER BY number').all() as { number: number }[]).map((r) => r.number);
        } finally {
          db.close();
        }
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
